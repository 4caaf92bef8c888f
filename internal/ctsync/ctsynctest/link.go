package ctsynctest

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Link is a sync link in memory: two datagram sockets (net.PacketConn),
// each delivering to the other what it writes, from the writer's address.
// Datagrams that find the other end's queue full are lost, as on a real
// link. Its methods are safe for concurrent use; inside a
// testing/synctest bubble a read waits durably.
type Link struct {
	mu    sync.Mutex
	addrs [2]netip.AddrPort
	ends  [2]*Conn
	down  bool
}

// Conn is one end of a Link.
type Conn struct {
	l      *Link
	i      int
	in     chan []byte
	closed chan struct{}
	once   sync.Once
}

// NewLink returns a link between a and b (end 0 and end 1).
func NewLink(a, b netip.AddrPort) *Link {
	l := &Link{addrs: [2]netip.AddrPort{a, b}}
	l.Reopen(0)
	l.Reopen(1)
	return l
}

// End returns the current socket of end i (0 or 1).
func (l *Link) End(i int) *Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ends[i]
}

// Reopen gives end i a fresh socket and returns it, for an engine that
// restarts (the one before closed the old socket).
func (l *Link) Reopen(i int) *Conn {
	c := &Conn{l: l, i: i, in: make(chan []byte, 4096), closed: make(chan struct{})}
	l.mu.Lock()
	l.ends[i] = c
	l.mu.Unlock()
	return c
}

// SetDown cuts the link (every datagram is lost) or mends it.
func (l *Link) SetDown(down bool) {
	l.mu.Lock()
	l.down = down
	l.mu.Unlock()
}

// ReadFrom returns the next datagram from the other end.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.in:
		return copy(b, p), net.UDPAddrFromAddrPort(c.l.addrs[1-c.i]), nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

// WriteTo sends b to the other end's current socket, wherever addr says.
func (c *Conn) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.l.mu.Lock()
	peer, down := c.l.ends[1-c.i], c.l.down
	c.l.mu.Unlock()
	if !down {
		select {
		case peer.in <- append([]byte(nil), b...):
		default:
		}
	}
	return len(b), nil
}

// Close closes the socket: a blocked ReadFrom returns net.ErrClosed.
func (c *Conn) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

// LocalAddr is the end's address.
func (c *Conn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.l.addrs[c.i]) }

// SetDeadline and the others do nothing: the engine uses none.
func (c *Conn) SetDeadline(time.Time) error      { return nil }
func (c *Conn) SetReadDeadline(time.Time) error  { return nil }
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }
