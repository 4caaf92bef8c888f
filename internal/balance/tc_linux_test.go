package balance

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// TestDatapathInstall installs and removes the filter on a real kernel,
// checks what tc(8) and ip(8) read back and how long a mask change takes.
func TestDatapathInstall(t *testing.T) {
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
