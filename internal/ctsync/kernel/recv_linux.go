package kernel

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// A generic Receive (nl.Conn's, like mdlayher/netlink's before it) keeps
// reading until NLMSG_DONE once a message has NLM_F_MULTI set, and
// ctnetlink sets NLM_F_MULTI on the single message answering a CT_GET
// (ctnetlink_fill_info: flags = portid ? NLM_F_MULTI : 0) without ever
// sending NLMSG_DONE: Receive blocks forever. So replies and events are
// read as datagrams here (batchReceiver, and nl.Conn.ReadDatagram for
// dumps), through the socket's RawConn (deadlines still apply), and
// walked in place (eachMessage).

// batchReceiver reads up to len(slots) datagrams with one recvmmsg, each
// into a slot of its own, without allocating. The kernel queues every
// conntrack event as a datagram of its own, so a burst of events costs
// one system call per batch instead of one per event. Where recvmmsg is
// missing (ENOSYS) it reads one datagram at a time into the first slot.
type batchReceiver struct {
	rc     syscall.RawConn
	buf    []byte
	slot   int
	iov    []unix.Iovec
	hdrs   []unix.Mmsghdr
	n      int // datagrams read by the last call
	errno  syscall.Errno
	single bool // no recvmmsg
	read   func(fd uintptr) bool
}

func newBatchReceiver(rc syscall.RawConn, slots, slot int) *batchReceiver {
	r := &batchReceiver{
		rc:   rc,
		buf:  make([]byte, slots*slot),
		slot: slot,
		iov:  make([]unix.Iovec, slots),
		hdrs: make([]unix.Mmsghdr, slots),
	}
	for i := range r.hdrs {
		r.iov[i].Base = &r.buf[i*slot]
		r.iov[i].SetLen(slot)
		r.hdrs[i].Hdr.Iov = &r.iov[i]
		r.hdrs[i].Hdr.SetIovlen(1)
	}
	r.read = func(fd uintptr) bool {
		var n uintptr
		var e syscall.Errno
		if !r.single {
			n, _, e = unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)),
				unix.MSG_DONTWAIT, 0, 0)
			if e == unix.ENOSYS {
				r.single = true
			}
		}
		if r.single {
			n, _, e = unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(r.slot),
				unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
			if e == 0 {
				r.hdrs[0].Len = uint32(min(int(n), r.slot))
				r.hdrs[0].Hdr.Flags = 0
				if int(n) > r.slot {
					r.hdrs[0].Hdr.Flags = unix.MSG_TRUNC
				}
				n = 1
			}
		}
		r.n, r.errno = int(n), e
		return e != unix.EAGAIN && e != unix.EINTR
	}
	return r
}

// next reads a batch and returns how many datagrams it holds (at least
// one on success).
func (r *batchReceiver) next() (int, error) {
	if err := r.rc.Read(r.read); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, fmt.Errorf("recvmsg: %w", r.errno)
	}
	return r.n, nil
}

// datagram returns the i-th datagram of the last batch, aliasing the
// buffer until the next call, or errTruncated if it did not fit its slot.
func (r *batchReceiver) datagram(i int) ([]byte, error) {
	h := &r.hdrs[i]
	if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
		return nil, errTruncated
	}
	return r.buf[i*r.slot : i*r.slot+int(h.Len)], nil
}

// sendDatagram sends b, one or more requests, to the kernel in one
// sendmsg.
func sendDatagram(rc syscall.RawConn, b []byte) error {
	var serr error
	err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN && serr != unix.EINTR
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("sendmsg: %w", serr)
	}
	return nil
}

// appendMessage appends m with sequence number seq, as the kernel reads
// it (nl.AppendMessage). nlmsg_pid stays 0: the kernel answers the
// socket's port id.
func appendMessage(b []byte, m nl.Message, seq uint32) []byte {
	m.Header.Sequence, m.Header.PID = seq, 0
	return nl.AppendMessage(b, m)
}

// eachMessage calls fn with every message of a datagram, in order, without
// allocating: the messages alias b. It stops at a message running past the
// datagram (errShortDatagram); fewer than a header's bytes left at the end
// are ignored.
func eachMessage(b []byte, fn func(nl.Message)) error {
	for len(b) >= nl.HeaderLen {
		m, rest, err := nl.Next(b)
		if err != nil {
			return errShortDatagram
		}
		fn(m)
		b = rest
	}
	return nil
}

// ackErrno returns the errno of an NLMSG_ERROR message (0: an ack).
//
//	struct nlmsgerr {
//		int		error;
//		struct nlmsghdr msg;
//	};
func ackErrno(m nl.Message) (unix.Errno, error) {
	if len(m.Data) < 4 {
		return 0, errShortDatagram
	}
	return unix.Errno(-int32(binary.NativeEndian.Uint32(m.Data))), nil
}
