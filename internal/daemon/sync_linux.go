package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/carpd/carpd/internal/config"
	"golang.org/x/sys/unix"
)

// listenSync opens the UDP socket of the sync link, bound to its device so
// sync traffic never leaves through another interface.
func listenSync(sc config.Sync) (net.PacketConn, error) {
	network, laddr := "udp4", &net.UDPAddr{IP: net.IPv4zero, Port: int(sc.Port)}
	if (sc.Peer.IsValid() && sc.Peer.Is6()) || (sc.Group.IsValid() && sc.Group.Is6()) {
		network, laddr = "udp6", &net.UDPAddr{IP: net.IPv6unspecified, Port: int(sc.Port)}
	}
	pc, err := listenUDPDevice(network, laddr, sc.Interface)
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

// listenUDPDevice is net.ListenConfig{Control: ...}.ListenPacket(network,
// laddr) with SO_BINDTODEVICE set before bind, built by
// hand, the same steps and the same errors: ListenConfig.ListenPacket goes
// through the resolver, which links Go's whole DNS client into the binary
// (about 250 KB on MIPS, package/SIZE.md). laddr is a wildcard address.
// syncRcvBuf is the receive buffer asked for the sync socket (the kernel
// doubles it for its bookkeeping).
const syncRcvBuf = 4 << 20

func listenUDPDevice(network string, laddr *net.UDPAddr, device string) (net.PacketConn, error) {
	opErr := func(err error) error { return &net.OpError{Op: "listen", Net: network, Addr: laddr, Err: err} }
	family := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: laddr.Port}
	if network == "udp6" {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: laddr.Port}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, opErr(os.NewSyscallError("socket", err))
	}
	f := os.NewFile(uintptr(fd), "sync")
	defer f.Close() // FilePacketConn keeps its own descriptor
	// What net sets on every datagram socket (sock_posix.go, sockopt_linux.go).
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return nil, opErr(os.NewSyscallError("setsockopt", err))
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
		return nil, opErr(os.NewSyscallError("setsockopt", err))
	}
	// Ours, before bind.
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, device); err != nil {
		return nil, opErr(err)
	}
	// No SO_REUSEADDR (nor SO_REUSEPORT): with it, any local program,
	// unprivileged ones included, could bind the same device and port
	// with SO_REUSEADDR and take the peer's datagrams. A restart binds
	// again at once anyway: a UDP port has no TIME_WAIT.
	// Room for a burst (a bulk transfer, a takeover's whole table: a few
	// thousand datagrams) while the engine injects: the default buffer
	// (~200 KB) overflows and every datagram it drops is sent again.
	// SO_RCVBUFFORCE passes net.core.rmem_max (carpd runs as root); else
	// the best SO_RCVBUF gives. Memory is taken only while datagrams wait.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, syncRcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, syncRcvBuf)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, opErr(os.NewSyscallError("bind", err))
	}
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, opErr(err)
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
