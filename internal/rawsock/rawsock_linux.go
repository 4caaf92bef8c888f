package rawsock

import (
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is a SOCK_RAW AF_PACKET socket bound to one interface and
// EtherType. It is a net.PacketConn.
type Conn struct {
	f        *os.File
	rc       syscall.RawConn
	ifindex  int
	protocol uint16 // network byte order
	local    *Addr

	// SendFrame's state, under sendMu: made once, so that a send
	// allocates nothing (a closure over locals would escape to the heap).
	sendMu   sync.Mutex
	sendFn   func(fd uintptr) bool
	sendBuf  []byte
	sendAddr unix.RawSockaddrLinklayer
	sendErr  unix.Errno
}

// Instruction is one classic BPF instruction (struct sock_filter).
type Instruction = unix.SockFilter

// htons swaps a host-order EtherType to network order.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Listen opens a socket on ifi for the EtherType protocol (0: the socket
// receives nothing, for sending only). filter, if not empty, is attached
// before the socket is bound, so no frame is queued that it refuses.
func Listen(ifi *net.Interface, protocol int, filter []Instruction) (*Conn, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, opError("listen", nil, os.NewSyscallError("socket", err))
	}
	c := &Conn{ifindex: ifi.Index, protocol: htons(uint16(protocol))}
	fail := func(call string, err error) (*Conn, error) {
		unix.Close(fd)
		return nil, opError("listen", nil, os.NewSyscallError(call, err))
	}
	if len(filter) > 0 {
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			return fail("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: c.protocol, Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	c.local = &Addr{}
	if ll, ok := sa.(*unix.SockaddrLinklayer); ok {
		c.local.HardwareAddr = append(net.HardwareAddr(nil), ll.Addr[:min(int(ll.Halen), len(ll.Addr))]...)
	}
	c.sendAddr = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: c.protocol, Ifindex: int32(ifi.Index), Halen: 6}
	c.sendFn = c.sendOnce
	c.f = os.NewFile(uintptr(fd), "packet")
	if c.rc, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		return nil, opError("listen", nil, err)
	}
	return c, nil
}

func opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "packet", Addr: addr, Err: err}
}

// SendFrame sends the Ethernet frame b to the destination MAC in its
// header. The send is a raw non-blocking sendto, made without the
// runtime's system-call bookkeeping (which wakes its monitor thread): a
// CARP advert costs no scheduler round trip. Only when the socket's
// buffer is full does it wait for the poller. It allocates nothing.
func (c *Conn) SendFrame(b []byte) error {
	if len(b) < 14 {
		return opError("write", nil, unix.EINVAL)
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	copy(c.sendAddr.Addr[:6], b[:6])
	c.sendBuf = b
	err := c.rc.Write(c.sendFn)
	c.sendBuf = nil
	if err == nil && c.sendErr != 0 {
		err = os.NewSyscallError("sendto", c.sendErr)
	}
	if err != nil {
		return opError("write", nil, err)
	}
	return nil
}

// sendOnce is SendFrame's attempt, in rc.Write: done unless the socket
// would block (then the poller waits for room and calls it again).
func (c *Conn) sendOnce(fd uintptr) bool {
	b := c.sendBuf
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_DONTWAIT,
		uintptr(unsafe.Pointer(&c.sendAddr)), unsafe.Sizeof(c.sendAddr))
	c.sendErr = e
	return e != unix.EAGAIN && e != unix.EINTR
}

// WriteTo sends the frame b (with its Ethernet header) to addr, an *Addr.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*Addr)
	if !ok || len(a.HardwareAddr) > 8 {
		return 0, opError("write", addr, unix.EINVAL)
	}
	sa := &unix.SockaddrLinklayer{Protocol: c.protocol, Ifindex: c.ifindex, Halen: uint8(len(a.HardwareAddr))}
	copy(sa.Addr[:], a.HardwareAddr)
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, sa)
		return serr != unix.EAGAIN && serr != unix.EINTR
	})
	if err == nil && serr != nil {
		err = os.NewSyscallError("sendto", serr)
	}
	if err != nil {
		return 0, opError("write", addr, err)
	}
	return len(b), nil
}

// ReadFrom reads one frame into b; addr is its source address.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	var (
		n    int
		from unix.RawSockaddrLinklayer
		rerr error
	)
	p := unsafe.Pointer(&from) // any valid pointer for an empty b
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	err := c.rc.Read(func(fd uintptr) bool {
		l := uint32(unsafe.Sizeof(from))
		r, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(p), uintptr(len(b)), unix.MSG_DONTWAIT,
			uintptr(unsafe.Pointer(&from)), uintptr(unsafe.Pointer(&l)))
		n, rerr = int(r), nil
		if e != 0 {
			rerr = e
		}
		return e != unix.EAGAIN && e != unix.EINTR
	})
	if err == nil && rerr != nil {
		err = os.NewSyscallError("recvfrom", rerr)
	}
	if err != nil {
		return 0, nil, opError("read", nil, err)
	}
	hl := min(int(from.Halen), len(from.Addr))
	hw := make(net.HardwareAddr, hl)
	copy(hw, from.Addr[:hl])
	return n, &Addr{HardwareAddr: hw}, nil
}

// Close closes the socket; blocked reads and writes end with an error.
func (c *Conn) Close() error { return c.f.Close() }

// LocalAddr is the interface's hardware address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.f.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.f.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }
