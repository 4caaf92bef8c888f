package nl

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newNS returns a descriptor of a new, empty network namespace (only lo,
// down), closed at the end of the test. It needs root: without it the
// test is skipped, or fails with CARPD_REQUIRE_NETNS=1.
func newNS(t *testing.T) int {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CARPD_REQUIRE_NETNS") == "1" {
			t.Fatal("needs root for a network namespace (CARPD_REQUIRE_NETNS=1)")
		}
		t.Skip("needs root for a network namespace")
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread stays locked and in the new namespace: the runtime
		// ends it with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{-1, err}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		ch <- result{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("new network namespace: %v", r.err)
	}
	t.Cleanup(func() { unix.Close(r.fd) })
	return r.fd
}

func dial(t *testing.T, family int, cfg *Config) *Conn {
	t.Helper()
	c, err := Dial(family, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// addrMsg is an RTM_NEWADDR/RTM_DELADDR body for a on lo (index 1).
func addrMsg(a netip.Prefix) []byte {
	b := []byte{unix.AF_INET, byte(a.Bits()), 0, 0, 1, 0, 0, 0} // struct ifaddrmsg
	binary.NativeEndian.PutUint32(b[4:], 1)
	ae := NewAttributeEncoder()
	ae.Bytes(unix.IFA_LOCAL, a.Addr().AsSlice())
	ae.Bytes(unix.IFA_ADDRESS, a.Addr().AsSlice())
	attrs, _ := ae.Encode()
	return append(b, attrs...)
}

// TestDumpLinks dumps the links of a new namespace (a multipart reply):
// exactly lo, index 1, and no NLMSG_DONE among the messages.
func TestDumpLinks(t *testing.T) {
	c := dial(t, unix.NETLINK_ROUTE, &Config{NetNS: newNS(t)})
	if c.PID() == 0 {
		t.Errorf("PID 0")
	}
	msgs, err := c.Execute(Message{
		Header: Header{Type: unix.RTM_GETLINK, Flags: Request | Dump},
		Data:   make([]byte, unix.SizeofIfInfomsg),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1 (lo): %+v", len(msgs), msgs)
	}
	m := msgs[0]
	if m.Header.Type != unix.RTM_NEWLINK || m.Header.Flags&Multi == 0 || m.Header.PID != c.PID() {
		t.Errorf("header %+v, want RTM_NEWLINK, NLM_F_MULTI, our port id %d", m.Header, c.PID())
	}
	if idx := binary.NativeEndian.Uint32(m.Data[4:8]); idx != 1 {
		t.Errorf("index %d, want 1", idx)
	}
	name := ""
	ad := NewAttributeDecoder(m.Data[unix.SizeofIfInfomsg:])
	for ad.Next() {
		if ad.Type() == unix.IFLA_IFNAME {
			name = ad.String()
		}
	}
	if err := ad.Err(); err != nil || name != "lo" {
		t.Errorf("IFLA_IFNAME %q, %v; want lo", name, err)
	}
}

// TestAddressAckAndErrors adds an address with an ack, adds it again
// exclusively (EEXIST, with the kernel's extended ack on), deletes it and
// deletes it again (EADDRNOTAVAIL).
func TestAddressAckAndErrors(t *testing.T) {
	c := dial(t, unix.NETLINK_ROUTE, &Config{NetNS: newNS(t)})
	if err := c.SetOption(ExtendedAcknowledge, true); err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix("192.0.2.1/24")
	add := Message{Header: Header{Type: unix.RTM_NEWADDR, Flags: Request | Acknowledge | Create | Excl}, Data: addrMsg(p)}
	msgs, err := c.Execute(add)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Header.Type != Error || CheckMessage(msgs[0]) != nil {
		t.Fatalf("add: %+v, want one ack", msgs)
	}
	_, err = c.Execute(add)
	var oe *OpError
	if !errors.Is(err, unix.EEXIST) || !errors.As(err, &oe) || oe.Sequence == 0 {
		t.Fatalf("second add: %v (%#v), want an *OpError with EEXIST", err, err)
	}

	del := Message{Header: Header{Type: unix.RTM_DELADDR, Flags: Request | Acknowledge}, Data: addrMsg(p)}
	if _, err := c.Execute(del); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.Execute(del); !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Fatalf("second delete: %v, want EADDRNOTAVAIL", err)
	}

	// A bad request: the kernel's extended ack names the problem.
	bad := Message{Header: Header{Type: unix.RTM_NEWADDR, Flags: Request | Acknowledge | Create}, Data: addrMsg(p)}
	binary.NativeEndian.PutUint32(bad.Data[4:], 999) // no such link
	_, err = c.Execute(bad)
	if !errors.Is(err, unix.ENODEV) || !errors.As(err, &oe) {
		t.Fatalf("bad index: %v, want ENODEV", err)
	}
	t.Logf("extended ack: %v", err)
}

// TestMulticastEvent subscribes twice (a Config group bound at Dial, and
// JoinGroup), changes an address on another socket, and receives the
// event on both.
func TestMulticastEvent(t *testing.T) {
	ns := newNS(t)
	bound := dial(t, unix.NETLINK_ROUTE, &Config{NetNS: ns, Groups: unix.RTMGRP_IPV4_IFADDR})
	joined := dial(t, unix.NETLINK_ROUTE, &Config{NetNS: ns})
	if err := joined.JoinGroup(unix.RTNLGRP_IPV4_IFADDR); err != nil {
		t.Fatal(err)
	}
	c := dial(t, unix.NETLINK_ROUTE, &Config{NetNS: ns})
	p := netip.MustParsePrefix("198.51.100.7/32")
	if _, err := c.Execute(Message{Header: Header{Type: unix.RTM_NEWADDR, Flags: Request | Acknowledge | Create}, Data: addrMsg(p)}); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Conn{"bound": bound, "joined": joined} {
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		msgs, err := s.Receive()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(msgs) != 1 || msgs[0].Header.Type != unix.RTM_NEWADDR {
			t.Fatalf("%s: %+v, want one RTM_NEWADDR", name, msgs)
		}
		var local netip.Addr
		ad := NewAttributeDecoder(msgs[0].Data[unix.SizeofIfAddrmsg:])
		for ad.Next() {
			if ad.Type() == unix.IFA_LOCAL {
				local, _ = netip.AddrFromSlice(ad.Bytes())
			}
		}
		if local != p.Addr() {
			t.Errorf("%s: IFA_LOCAL %v, want %v", name, local, p.Addr())
		}
	}
}

// TestDeadlineUnblocksRead: a read with nothing to read ends at its
// deadline with os.ErrDeadlineExceeded; a later deadline in the past ends
// the next at once.
func TestDeadlineUnblocksRead(t *testing.T) {
	c := dial(t, unix.NETLINK_ROUTE, &Config{NetNS: newNS(t), Groups: unix.RTMGRP_LINK})
	start := time.Now()
	c.SetReadDeadline(start.Add(100 * time.Millisecond))
	_, err := c.Receive()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Receive: %v, want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 5*time.Second {
		t.Errorf("returned after %v, want about 100ms", d)
	}
	c.SetReadDeadline(time.Unix(1, 0))
	if _, err := c.ReadDatagram(make([]byte, 4096)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadDatagram: %v, want os.ErrDeadlineExceeded", err)
	}
}

// TestCloseUnblocksRead: Close ends a read blocked with no deadline.
func TestCloseUnblocksRead(t *testing.T) {
	c, err := Dial(unix.NETLINK_ROUTE, &Config{NetNS: newNS(t), Groups: unix.RTMGRP_LINK})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Receive()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it block
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Receive after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Receive")
	}
}

// TestReadDatagramTruncated: a datagram larger than the buffer is
// reported, not cut silently.
func TestReadDatagramTruncated(t *testing.T) {
	c := dial(t, unix.NETLINK_ROUTE, &Config{NetNS: newNS(t)})
	req := AppendMessage(nil, Message{Header: Header{Type: unix.RTM_GETLINK, Flags: Request | Dump, Sequence: 1},
		Data: make([]byte, unix.SizeofIfInfomsg)})
	if err := c.WriteDatagram(req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.ReadDatagram(make([]byte, 32)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("ReadDatagram into 32 bytes: %v, want ErrTruncated", err)
	}
}
