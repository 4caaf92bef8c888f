package nl

import (
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Config is how Dial opens a socket.
type Config struct {
	// Groups is the bitmask of multicast groups (1-32) bound at once;
	// JoinGroup joins any.
	Groups uint32
	// NetNS, if not 0, is a descriptor of the network namespace to open
	// the socket in; else it is the calling thread's.
	NetNS int
}

// ConnOption is a boolean socket option of SOL_NETLINK.
type ConnOption int

// The options of include/uapi/linux/netlink.h carpd sets.
const (
	BroadcastError      ConnOption = unix.NETLINK_BROADCAST_ERROR
	NoENOBUFS           ConnOption = unix.NETLINK_NO_ENOBUFS
	ListenAllNSID       ConnOption = unix.NETLINK_LISTEN_ALL_NSID
	CapAcknowledge      ConnOption = unix.NETLINK_CAP_ACK
	ExtendedAcknowledge ConnOption = unix.NETLINK_EXT_ACK
	GetStrictCheck      ConnOption = unix.NETLINK_GET_STRICT_CHK
)

// Conn is a netlink socket. It is nonblocking and on the runtime's
// netpoller: a read deadline, or Close, ends a blocked read with an error
// (os.ErrDeadlineExceeded, os.ErrClosed). Execute and Receive may be used
// from several goroutines; SyscallConn's reads and writes are the caller's
// to serialize.
type Conn struct {
	f      *os.File
	rc     syscall.RawConn
	pid    uint32
	closed atomic.Bool // Close was called

	mu  sync.Mutex // serializes Execute and Receive
	seq uint32
}

// Dial opens a netlink socket of the given protocol family
// (unix.NETLINK_ROUTE, ...). cfg may be nil.
func Dial(family int, cfg *Config) (*Conn, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	var fd int
	var err error
	if cfg.NetNS != 0 {
		fd, err = socketInNS(cfg.NetNS, unix.AF_NETLINK, unix.SOCK_RAW, family)
	} else {
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, family)
		err = os.NewSyscallError("socket", err)
	}
	if err != nil {
		return nil, &OpError{Op: "dial", Err: err}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cfg.Groups}); err != nil {
		unix.Close(fd)
		return nil, &OpError{Op: "dial", Err: os.NewSyscallError("bind", err)}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, &OpError{Op: "dial", Err: os.NewSyscallError("getsockname", err)}
	}
	f := os.NewFile(uintptr(fd), "netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, &OpError{Op: "dial", Err: err}
	}
	c := &Conn{f: f, rc: rc, seq: rand.Uint32()}
	if nsa, ok := sa.(*unix.SockaddrNetlink); ok {
		c.pid = nsa.Pid
	}
	return c, nil
}

// socketInNS opens a nonblocking socket in the network namespace ns, from
// a thread of its own: it enters ns, opens the socket and goes back. A
// thread that cannot go back stays locked, and the runtime ends it with
// its goroutine.
func socketInNS(ns, domain, typ, proto int) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, os.NewSyscallError("open netns", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, os.NewSyscallError("setns", err)}
			return
		}
		fd, err := unix.Socket(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{fd, os.NewSyscallError("socket", err)}
	}()
	r := <-ch
	return r.fd, r.err
}

// Close closes the socket; blocked reads end with os.ErrClosed.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.f.Close()
}

// ioError is an error of the netpoller (a deadline, a closed file) as an
// *OpError; after Close it is os.ErrClosed (the poller's own is an
// unexported "use of closed file").
func (c *Conn) ioError(op string, err error) error {
	if c.closed.Load() {
		err = os.ErrClosed
	}
	return &OpError{Op: op, Err: err}
}

// PID is the socket's port id, as the kernel assigned it at Dial.
func (c *Conn) PID() uint32 { return c.pid }

// SyscallConn gives the socket's descriptor, for options and for reads and
// writes the netpoller waits for (ReadDatagram, WriteDatagram).
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.f.SetDeadline(t) }

// SetReadDeadline sets the read deadline: a read blocked past it fails
// with os.ErrDeadlineExceeded. The zero time clears it.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.f.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

func (c *Conn) setsockopt(level, opt, v int, op string) error {
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), level, opt, v)
	}); err != nil {
		return &OpError{Op: op, Err: err}
	}
	if serr != nil {
		return &OpError{Op: op, Err: os.NewSyscallError("setsockopt", serr)}
	}
	return nil
}

// JoinGroup joins the multicast group g (NETLINK_ADD_MEMBERSHIP).
func (c *Conn) JoinGroup(g uint32) error {
	return c.setsockopt(unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(g), "join-group")
}

// LeaveGroup leaves the multicast group g.
func (c *Conn) LeaveGroup(g uint32) error {
	return c.setsockopt(unix.SOL_NETLINK, unix.NETLINK_DROP_MEMBERSHIP, int(g), "leave-group")
}

// SetOption turns a SOL_NETLINK option on or off.
func (c *Conn) SetOption(o ConnOption, on bool) error {
	v := 0
	if on {
		v = 1
	}
	return c.setsockopt(unix.SOL_NETLINK, int(o), v, "set-option")
}

// SetReadBuffer sets SO_RCVBUF (capped by net.core.rmem_max).
func (c *Conn) SetReadBuffer(n int) error {
	return c.setsockopt(unix.SOL_SOCKET, unix.SO_RCVBUF, n, "set-read-buffer")
}

// ReadBuffer is the receive buffer the kernel granted (SO_RCVBUF).
func (c *Conn) ReadBuffer() (int, error) {
	var n int
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		n, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	}); err != nil {
		return 0, &OpError{Op: "read-buffer", Err: err}
	}
	if serr != nil {
		return 0, &OpError{Op: "read-buffer", Err: os.NewSyscallError("getsockopt", serr)}
	}
	return n, nil
}

// ReadDatagram reads one datagram into buf and returns it (aliasing buf).
// A datagram larger than buf fails with ErrTruncated (and is lost). The
// read waits through the netpoller: deadlines and Close end it.
func (c *Conn) ReadDatagram(buf []byte) ([]byte, error) {
	n, err := c.recv(buf, 0)
	if err != nil {
		return nil, err
	}
	if n > len(buf) {
		return nil, &OpError{Op: "receive", Err: ErrTruncated}
	}
	return buf[:n], nil
}

// recv is one recvmsg with MSG_TRUNC: n is the datagram's real length.
func (c *Conn) recv(buf []byte, flags int) (int, error) {
	var (
		n    int
		rerr error
	)
	p := unsafe.Pointer(&zero) // the kernel is given a length of 0
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	err := c.rc.Read(func(fd uintptr) bool {
		// recvfrom with no address: unix.Recvmsg would allocate the
		// sender's sockaddr for every datagram.
		r, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(p), uintptr(len(buf)),
			uintptr(flags|unix.MSG_TRUNC|unix.MSG_DONTWAIT), 0, 0)
		n, rerr = int(r), nil
		if e != 0 {
			rerr = e
		}
		return e != unix.EAGAIN && e != unix.EINTR
	})
	if err != nil {
		return 0, c.ioError("receive", err)
	}
	if rerr != nil {
		return 0, &OpError{Op: "receive", Err: os.NewSyscallError("recvmsg", rerr)}
	}
	return n, nil
}

// WriteDatagram sends b, one or more messages, to the kernel in one
// sendmsg.
func (c *Conn) WriteDatagram(b []byte) error {
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN && serr != unix.EINTR
	})
	if err != nil {
		return c.ioError("send", err)
	}
	if serr != nil {
		return &OpError{Op: "send", Err: os.NewSyscallError("sendmsg", serr)}
	}
	return nil
}

// Execute sends m as a request and returns the replies to it: up to
// NLMSG_DONE (left out) for a multipart reply, else the one datagram that
// answers it, an ack among them if m asked for one. Header.Sequence and
// PID are filled in if zero, Flags get Request if zero. An error reply
// (NLMSG_ERROR with an errno) is returned as an *OpError. Replies to other
// requests (another sequence number) are skipped.
func (c *Conn) Execute(m Message) ([]Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Header.Sequence == 0 {
		c.seq++
		if c.seq == 0 {
			c.seq++
		}
		m.Header.Sequence = c.seq
	}
	if m.Header.PID == 0 {
		m.Header.PID = c.pid
	}
	if m.Header.Flags == 0 {
		m.Header.Flags = Request
	}
	if err := c.WriteDatagram(AppendMessage(nil, m)); err != nil {
		return nil, err
	}
	return c.receive(m.Header.Sequence)
}

// Receive reads one datagram, and more while a multipart reply goes on
// (up to NLMSG_DONE, left out). Error replies are returned as errors, as
// by Execute. The messages are the caller's.
func (c *Conn) Receive() ([]Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.receive(0)
}

// receive reads the reply to seq (any message if 0).
func (c *Conn) receive(seq uint32) ([]Message, error) {
	var out []Message
	for {
		// Peek at the datagram's length, then read it into a buffer of
		// its own: the messages alias it.
		n, err := c.recv(nil, unix.MSG_PEEK)
		if err != nil {
			return nil, err
		}
		b, err := c.ReadDatagram(make([]byte, align(n)))
		if err != nil {
			return nil, err
		}
		more := false
		for len(b) >= HeaderLen {
			var m Message
			if m, b, err = Next(b); err != nil {
				return nil, &OpError{Op: "receive", Err: err}
			}
			if seq != 0 && m.Header.Sequence != seq {
				continue
			}
			if err := CheckMessage(m); err != nil {
				return nil, err
			}
			if m.Header.Type == Done && m.Header.Flags&Multi != 0 {
				return out, nil
			}
			more = more || m.Header.Flags&Multi != 0
			out = append(out, m)
		}
		if !more && (seq == 0 || len(out) > 0) {
			return out, nil
		}
	}
}
