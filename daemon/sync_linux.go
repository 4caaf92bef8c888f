package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/carpd/carpd/config"
	"golang.org/x/sys/unix"
)

// listenSync opens the UDP socket of the sync link, bound to its device so
// sync traffic never leaves through another interface.
func listenSync(sc config.Sync) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, sc.Interface)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	network, laddr := "udp4", fmt.Sprintf("0.0.0.0:%d", sc.Port)
	if (sc.Peer.IsValid() && sc.Peer.Is6()) || (sc.Group.IsValid() && sc.Group.Is6()) {
		network, laddr = "udp6", fmt.Sprintf("[::]:%d", sc.Port)
	}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return nil, fmt.Errorf("sync socket on %s: %w", sc.Interface, err)
	}
	if sc.Group.IsValid() {
		ifi, err := net.InterfaceByName(sc.Interface)
		if err != nil {
			pc.Close()
			return nil, err
		}
		if err := joinGroup(pc, ifi, sc.Group); err != nil {
			pc.Close()
			return nil, fmt.Errorf("joining %s on %s: %w", sc.Group, sc.Interface, err)
		}
	}
	return pc, nil
}

func joinGroup(pc net.PacketConn, ifi *net.Interface, g netip.Addr) error {
	sc, err := pc.(*net.UDPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = sc.Control(func(fd uintptr) {
		if g.Is4() {
			mreq := &unix.IPMreqn{Multiaddr: g.As4(), Ifindex: int32(ifi.Index)}
			serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq)
			if serr == nil {
				serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq)
			}
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0)
			}
			return
		}
		mreq := &unix.IPv6Mreq{Multiaddr: g.As16(), Interface: uint32(ifi.Index)}
		serr = unix.SetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index)
		}
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
