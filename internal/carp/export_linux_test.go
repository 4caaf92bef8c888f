package carp

import (
	"net"

	"golang.org/x/sys/unix"
)

// SocketPriorities returns SO_PRIORITY of an Iface's raw IPv4 and IPv6
// sockets.
func SocketPriorities(i *Iface) (p4, p6 int, err error) {
	get := func(c *net.IPConn) (p int, err error) {
		sc, err := c.SyscallConn()
		if err != nil {
			return 0, err
		}
		var gerr error
		if err := sc.Control(func(fd uintptr) { p, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PRIORITY) }); err != nil {
			return 0, err
		}
		return p, gerr
	}
	if p4, err = get(i.raw4); err != nil {
		return
	}
	p6, err = get(i.raw6)
	return
}
