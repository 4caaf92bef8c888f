package rawsock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// etherTypeTest is the IEEE local experimental EtherType 1.
const etherTypeTest = 0x88b5

// inNewNS runs fn on a thread in a new network namespace whose lo is up;
// the sockets fn opens stay in it. It needs root: without it the test is
// skipped, or fails with CARPD_REQUIRE_NETNS=1.
func inNewNS(t *testing.T, fn func(lo *net.Interface) error) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CARPD_REQUIRE_NETNS") == "1" {
			t.Fatal("needs root for a network namespace (CARPD_REQUIRE_NETNS=1)")
		}
		t.Skip("needs root for a network namespace")
	}
	ch := make(chan error, 1)
	go func() {
		// The thread stays locked in the namespace; the runtime ends it
		// with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- err
			return
		}
		c, err := nl.Dial(unix.NETLINK_ROUTE, nil)
		if err != nil {
			ch <- err
			return
		}
		defer c.Close()
		up := make([]byte, unix.SizeofIfInfomsg) // struct ifinfomsg
		binary.NativeEndian.PutUint32(up[4:], 1)
		binary.NativeEndian.PutUint32(up[8:], unix.IFF_UP)
		binary.NativeEndian.PutUint32(up[12:], unix.IFF_UP)
		if _, err := c.Execute(nl.Message{Header: nl.Header{Type: unix.RTM_NEWLINK, Flags: nl.Request | nl.Acknowledge}, Data: up}); err != nil {
			ch <- err
			return
		}
		ch <- fn(&net.Interface{Index: 1, Name: "lo"})
	}()
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
}

// TestSendReceive sends a frame on lo from a socket that drops everything
// (vip's filter) and receives it on one bound to its EtherType; the
// dropping socket itself receives nothing.
func TestSendReceive(t *testing.T) {
	var send, recv *Conn
	inNewNS(t, func(lo *net.Interface) (err error) {
		if send, err = Listen(lo, etherTypeTest, []Instruction{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}); err != nil {
			return err
		}
		recv, err = Listen(lo, etherTypeTest, nil)
		return err
	})
	defer send.Close()
	defer recv.Close()

	dst := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	frame := append(append(append([]byte{}, dst...), 0x02, 0, 0, 0, 0, 0x02, etherTypeTest>>8, etherTypeTest&0xff), "carpd"...)
	if n, err := send.WriteTo(frame, &Addr{HardwareAddr: dst}); err != nil || n != len(frame) {
		t.Fatalf("WriteTo: %d, %v", n, err)
	}
	recv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := recv.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	if !bytes.Equal(buf[:n], frame) {
		t.Errorf("received % x, want % x", buf[:n], frame)
	}
	if from.Network() != "packet" {
		t.Errorf("source %v on %q", from, from.Network())
	}

	send.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, _, err := send.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the drop-all socket read: %v, want its deadline", err)
	}
	if _, err := send.WriteTo(frame, &net.IPAddr{}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("WriteTo a non-link address: %v, want EINVAL", err)
	}
}

// TestCloseUnblocksRead: Close ends a blocked ReadFrom.
func TestCloseUnblocksRead(t *testing.T) {
	var c *Conn
	inNewNS(t, func(lo *net.Interface) (err error) {
		c, err = Listen(lo, etherTypeTest, nil)
		return err
	})
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 1500))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("ReadFrom after Close: no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock ReadFrom")
	}
}

// TestSendFrame: SendFrame delivers the frame to the MAC in its header,
// allocates nothing per send, and refuses a frame shorter than a header.
func TestSendFrame(t *testing.T) {
	var send, recv *Conn
	inNewNS(t, func(lo *net.Interface) (err error) {
		if send, err = Listen(lo, 0, nil); err != nil {
			return err
		}
		recv, err = Listen(lo, etherTypeTest, nil)
		return err
	})
	defer send.Close()
	defer recv.Close()
	frame := append([]byte{0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, etherTypeTest >> 8, etherTypeTest & 0xff}, "advert"...)
	const sends = 50
	if a := testing.AllocsPerRun(sends, func() {
		if err := send.SendFrame(frame); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("SendFrame: %v allocations per send, want 0", a)
	}
	recv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for i := range sends + 1 { // AllocsPerRun runs once more to warm up
		n, _, err := recv.ReadFrom(buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], frame) {
			t.Fatalf("frame %d: % x, want % x", i, buf[:n], frame)
		}
	}
	if err := send.SendFrame(frame[:13]); !errors.Is(err, unix.EINVAL) {
		t.Errorf("a 13-byte frame: %v, want EINVAL", err)
	}
}
