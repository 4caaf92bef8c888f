package balance

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/carpd/carpd/internal/lab"
	"golang.org/x/sys/unix"
)

// TestDatapathInstall installs and removes the tc filter (the path of
// kernels without tcx) on a real kernel, checks what tc(8) and ip(8) read
// back and how long a mask change takes.
func TestDatapathInstall(t *testing.T) {
	lab.Require(t)
	ForceTC = true
	defer func() { ForceTC = false }()
	l, err := lab.New("carpbal")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	sw, err := l.Switch("lan")
	if err != nil {
		t.Fatal(err)
	}
	h, err := l.Host("r1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Attach(h, sw, "eth0", "10.9.0.2/24"); err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x01, 0x05}
	var d *Datapath
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		d, err = Open(ifi.Index, 5, mac, 3)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	show := func() string {
		out, err := h.Run(context.Background(), "tc", "filter", "show", "dev", "eth0", "ingress")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := show()
	for _, want := range []string{"pref 49157 bpf", "carpd_balance", "direct-action"} {
		if !strings.Contains(out, want) {
			t.Errorf("tc filter show lacks %q:\n%s", want, out)
		}
	}
	maddr, err := h.Run(context.Background(), "ip", "maddress", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(maddr, "01:00:5e:00:01:05") {
		t.Errorf("the NIC's multicast list lacks the cluster MAC:\n%s", maddr)
	}
	var worst time.Duration
	for i := uint32(0); i < 50; i++ {
		start := time.Now()
		if err := d.SetMask(i % 8); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("50 mask changes, slowest %v", worst)
	if worst > 50*time.Millisecond {
		t.Errorf("a mask change took %v", worst)
	}
	if d.Mask() != 49%8 {
		t.Errorf("Mask() = %d after the last SetMask(%d)", d.Mask(), 49%8)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if out := show(); strings.Contains(out, "bpf") {
		t.Errorf("filters left after Close:\n%s", out)
	}
	maddr, _ = h.Run(context.Background(), "ip", "maddress", "show", "dev", "eth0")
	if strings.Contains(maddr, "01:00:5e:00:01:05") {
		t.Errorf("the cluster MAC stayed in the NIC's list after Close:\n%s", maddr)
	}
}

// tcxCount returns how many programs the interface's tcx ingress hook runs
// (BPF_PROG_QUERY).
func tcxCount(t *testing.T, ifindex int) uint32 {
	t.Helper()
	var attr struct {
		ifindex, attachType, queryFlags, attachFlags uint32
		progIDs                                      uint64
		count                                        uint32
		_                                            [attrSize - 28]byte
	}
	attr.ifindex, attr.attachType = uint32(ifindex), unix.BPF_TCX_INGRESS
	if _, err := bpfCall(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr)); err != nil {
		t.Fatalf("BPF_PROG_QUERY: %v", err)
	}
	return attr.count
}

// TestDatapathTCX: where the kernel has tcx, Open attaches by a link, no tc
// filter; closing the link's descriptor, as a crash does, detaches the
// program.
func TestDatapathTCX(t *testing.T) {
	lab.Require(t)
	l, err := lab.New("carpbal")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	sw, err := l.Switch("lan")
	if err != nil {
		t.Fatal(err)
	}
	h, err := l.Host("r1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Attach(h, sw, "eth0", "10.9.0.2/24"); err != nil {
		t.Fatal(err)
	}
	var d *Datapath
	var ifindex int
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		d, err = Open(ifi.Index, 5, net.HardwareAddr{0, 0, 0x5e, 0, 1, 5}, 2)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.link < 0 {
		t.Skip("this kernel has no tcx (6.6 and later); the tc filter path is TestDatapathInstall's")
	}
	var n uint32
	h.Do(func() error { n = tcxCount(t, ifindex); return nil })
	if n != 1 {
		t.Fatalf("tcx ingress runs %d programs, want 1", n)
	}
	if out, _ := h.Run(context.Background(), "tc", "filter", "show", "dev", "eth0", "ingress"); strings.Contains(out, "bpf") {
		t.Errorf("a tc filter besides the tcx link:\n%s", out)
	}
	unix.Close(d.link) // what the kernel does when carpd dies
	d.link = -1
	h.Do(func() error { n = tcxCount(t, ifindex); return nil })
	if n != 0 {
		t.Fatalf("tcx ingress still runs %d programs after the link closed", n)
	}
}
