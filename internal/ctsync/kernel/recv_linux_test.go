package kernel

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// eventMessageBuffer is the tests' buffer for one datagram.
const eventMessageBuffer = 64 << 10

// queueGetLo makes the kernel queue n datagrams on c: its answers to
// RTM_GETLINK for lo.
func queueGetLo(t *testing.T, c *nl.Conn, n int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	getLo := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(getLo[4:], 1) // ifi_index: lo
	req := appendMessage(nil, nl.Message{Header: nl.Header{Type: unix.RTM_GETLINK, Flags: nl.Request}, Data: getLo}, 1)
	for range n {
		if err := sendDatagram(rc, req); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBatchReceiver: one recvmmsg reads every queued datagram up to the
// batch size, each whole in its slot, and allocates nothing; a datagram
// larger than its slot is reported truncated.
func TestBatchReceiver(t *testing.T) {
	c, err := nl.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, _ := c.SyscallConn()
	queueGetLo(t, c, 40)
	r := newBatchReceiver(rc, eventBatch, eventSlot)
	sizes := make([]int, 0, 3)
	allocs := testing.AllocsPerRun(2, func() { // 3 batches: a warm-up and 2 runs
		n, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, n)
		for i := range n {
			b, err := r.datagram(i)
			if err != nil {
				t.Fatal(err)
			}
			if eachMessage(b, func(m nl.Message) {
				if m.Header.Type != unix.RTM_NEWLINK {
					t.Errorf("datagram %d: message type %d", i, m.Header.Type)
				}
			}) != nil {
				t.Fatalf("datagram %d: unparsable", i)
			}
		}
	})
	if len(sizes) != 3 || sizes[0] != eventBatch || sizes[1] != eventBatch || sizes[2] != 40-2*eventBatch {
		t.Errorf("batches of %v datagrams, want %d, %d, %d", sizes, eventBatch, eventBatch, 40-2*eventBatch)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}

	queueGetLo(t, c, 1)
	small := newBatchReceiver(rc, 2, 64) // an RTM_NEWLINK of lo is ~1 KB
	if n, err := small.next(); err != nil || n != 1 {
		t.Fatalf("next: %d, %v", n, err)
	}
	if _, err := small.datagram(0); !errors.Is(err, errTruncated) {
		t.Errorf("datagram larger than its slot: %v, want errTruncated", err)
	}
}

// parseDatagram splits a datagram into messages. The messages alias b.
func parseDatagram(b []byte) ([]nl.Message, error) {
	var out []nl.Message
	err := eachMessage(b, func(m nl.Message) { out = append(out, m) })
	return out, err
}
