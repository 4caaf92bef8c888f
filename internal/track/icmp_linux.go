package track

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawICMP is a raw ICMP (IPv4) or ICMPv6 socket in Go's poller.
type rawICMP struct {
	f  *os.File
	v6 bool
}

// openICMP opens a raw echo socket bound to device ("" for none). The
// kernel filter passes only echo replies (a raw ICMP socket otherwise gets
// every ICMP message the host receives).
func openICMP(v6 bool, device string) (ICMPConn, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("raw ICMP socket: %w", err)
	}
	if err := setupICMP(fd, v6, device); err != nil {
		unix.Close(fd)
		return nil, err
	}
	name := "icmp"
	if v6 {
		name = "icmp6"
	}
	return &rawICMP{f: os.NewFile(uintptr(fd), name), v6: v6}, nil
}

func setupICMP(fd int, v6 bool, device string) error {
	if device != "" {
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, device); err != nil {
			return fmt.Errorf("bind to device %s: %w", device, err)
		}
	}
	if v6 {
		// struct icmp6_filter: a set bit blocks the type.
		var filt [8]uint32
		for i := range filt {
			filt[i] = ^uint32(0)
		}
		filt[icmp6EchoReply>>5] &^= 1 << (icmp6EchoReply & 31)
		if err := setsockoptBytes(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, unsafe.Pointer(&filt), unsafe.Sizeof(filt)); err != nil {
			return fmt.Errorf("ICMPv6 filter: %w", err)
		}
		return nil
	}
	// ICMP_FILTER (linux/icmp.h): a set bit blocks the type.
	mask := ^uint32(1 << icmp4EchoReply)
	if err := unix.SetsockoptInt(fd, unix.SOL_RAW, unix.ICMP_FILTER, int(mask)); err != nil {
		return fmt.Errorf("ICMP filter: %w", err)
	}
	return nil
}

func setsockoptBytes(fd, level, opt int, p unsafe.Pointer, n uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), n, 0)
	if e != 0 {
		return e
	}
	return nil
}

func (c *rawICMP) WriteTo(msg []byte, dst netip.Addr) error {
	var sa unix.Sockaddr
	if c.v6 {
		s := &unix.SockaddrInet6{Addr: dst.As16()}
		if z := dst.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				s.ZoneId = uint32(ifi.Index)
			} else if n, err := strconv.ParseUint(z, 10, 32); err == nil {
				s.ZoneId = uint32(n)
			}
		}
		sa = s
	} else {
		sa = &unix.SockaddrInet4{Addr: dst.Unmap().As4()}
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), msg, 0, sa)
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err != nil {
		return err
	}
	return serr
}

func (c *rawICMP) ReadFrom(buf []byte, deadline time.Time) (int, netip.Addr, error) {
	if err := c.f.SetReadDeadline(deadline); err != nil {
		return 0, netip.Addr{}, err
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		return 0, netip.Addr{}, err
	}
	var (
		n    int
		from unix.Sockaddr
		rerr error
	)
	err = rc.Read(func(fd uintptr) bool {
		n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err != nil {
		return 0, netip.Addr{}, err
	}
	if rerr != nil {
		return 0, netip.Addr{}, rerr
	}
	var src netip.Addr
	switch sa := from.(type) {
	case *unix.SockaddrInet4:
		src = netip.AddrFrom4(sa.Addr)
	case *unix.SockaddrInet6:
		src = netip.AddrFrom16(sa.Addr)
	}
	return n, src, nil
}

func (c *rawICMP) Close() error { return c.f.Close() }
