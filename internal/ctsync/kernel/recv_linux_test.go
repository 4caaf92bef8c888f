package kernel

import (
	"encoding/binary"
	"testing"

	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// TestReceiverAllocs: reading a datagram with a receiver and walking its
// messages allocates nothing (unix.Recvmsg, before, allocated five times
// per datagram, and parseDatagram a slice). The
// datagrams are rtnetlink's answers to RTM_GETLINK for lo, queued first.
func TestReceiverAllocs(t *testing.T) {
	c, err := nl.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	getLo := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(getLo[4:], 1) // ifi_index: lo
	req := appendMessage(nil, nl.Message{Header: nl.Header{Type: unix.RTM_GETLINK, Flags: nl.Request}, Data: getLo}, 1)
	const runs = 20
	for range runs + 1 { // AllocsPerRun runs once more to warm up
		if err := sendDatagram(rc, req); err != nil {
			t.Fatal(err)
		}
	}
	r := newReceiver(rc, make([]byte, eventMessageBuffer))
	got := 0
	allocs := testing.AllocsPerRun(runs, func() {
		b, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if eachMessage(b, func(m nl.Message) {
			if m.Header.Type == unix.RTM_NEWLINK {
				got++
			}
		}) != nil {
			t.Fatal("unparsable reply")
		}
	})
	if got != runs+1 {
		t.Errorf("%d RTM_NEWLINK replies, want %d", got, runs+1)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per datagram, want 0", allocs)
	}
}
