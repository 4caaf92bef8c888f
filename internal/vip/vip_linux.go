package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/nl"
	"github.com/carpd/carpd/internal/rawsock"
	"golang.org/x/sys/unix"
)

// Linux implements carp.Announcer (whose comment is the contract of Add,
// Remove and Announce) for one interface: rtnetlink for addresses,
// AF_PACKET for announcements. Its methods are safe for concurrent use.
//
// Sockets: a Linux keeps no socket open. Each call dials its own rtnetlink
// socket and, for Announce, one AF_PACKET socket per address family, and
// closes them before it returns. That costs a few system calls per takeover
// and buys three things: no goroutine and nothing to leak; a Linux survives
// its interface being deleted and re-created, because the name is looked up
// again at every call; and every call acts in the network namespace of the
// calling thread, like net.Dial (tests run calls inside a namespace on a
// locked thread).
type Linux struct {
	ifname string
	log    *logx.Logger
	closed atomic.Bool

	// link, listen and forwarding reach the kernel. New sets them; unit
	// tests replace them to see Announce's frames without privileges.
	link       func(ctx context.Context) (*net.Interface, error)
	listen     func(ifi *net.Interface, protocol int) (net.PacketConn, error)
	forwarding func() bool
}

// New returns the announcer for the interface named ifname. The interface
// need not exist yet: it is looked up at every call. A nil log discards.
func New(ifname string, log *logx.Logger) (*Linux, error) {
	if err := checkInterfaceName(ifname); err != nil {
		return nil, err
	}
	l := &Linux{
		ifname: ifname,
		log:    discardIfNil(log).With("iface", ifname),
	}
	l.link = l.kernelLink
	l.listen = listenPacket
	l.forwarding = func() bool { return ipv6Forwarding(ifname) }
	return l, nil
}

// Close marks l closed; later calls fail with an error wrapping net.ErrClosed.
// It holds no resources and removes no address.
func (l *Linux) Close() error {
	l.closed.Store(true)
	return nil
}

// Add implements carp.Announcer. It sends RTM_NEWADDR with NLM_F_CREATE|
// NLM_F_REPLACE, as "ip addr replace" does. IPv4 addresses get IFA_LOCAL and,
// for prefixes shorter than /31, the subnet broadcast address; IPv6 addresses
// get IFA_F_NODAD.
func (l *Linux) Add(ctx context.Context, ps []netip.Prefix) error {
	return l.modify(ctx, "add", ps)
}

// Remove implements carp.Announcer. It sends RTM_DELADDR and treats the kernel's
// "not there" answers (EADDRNOTAVAIL, ENOENT, ENODEV, ENXIO) as success, as
// it does a missing interface. The prefix length must match: the kernel
// deletes 192.0.2.10/24 only if it was added as /24.
func (l *Linux) Remove(ctx context.Context, ps []netip.Prefix) error {
	return l.modify(ctx, "remove", ps)
}

// modify runs Add (op "add") or Remove (op "remove").
func (l *Linux) modify(ctx context.Context, op string, ps []netip.Prefix) error {
	if l.closed.Load() {
		return fmt.Errorf("vip: %s on %s: %w", op, l.ifname, net.ErrClosed)
	}
	if len(ps) == 0 {
		return nil
	}
	c, done, err := dialRoute(ctx)
	if err != nil {
		return fmt.Errorf("vip: %s on %s: %w", op, l.ifname, err)
	}
	defer done()

	ifi, err := getLink(c, l.ifname)
	if op == "remove" && errors.Is(err, ErrNoInterface) {
		l.log.Debug("interface is gone, nothing to remove", "op", op, "vip", ps)
		return nil
	}
	if err != nil {
		return fmt.Errorf("vip: %s: %w", op, err)
	}

	var errs []error
	for _, p := range ps {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("vip: %s on %s: %w", op, l.ifname, err))
			break
		}
		if err := checkPrefix(p); err != nil {
			errs = append(errs, err)
			continue
		}
		msg := addressMessage(uint32(ifi.Index), p)
		if op == "add" {
			_, err = execute(c, unix.RTM_NEWADDR,
				nl.Request|nl.Create|nl.Replace|nl.Acknowledge, msg, 0)
		} else {
			_, err = execute(c, unix.RTM_DELADDR, nl.Request|nl.Acknowledge, msg, 0)
			if isAbsent(err) {
				l.log.Debug("address already absent", "op", op, "vip", p)
				continue
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("vip: %s %v on %s: %w", op, p, l.ifname, err))
			continue
		}
		l.log.Debug("address changed", "op", op, "vip", p)
	}
	return errors.Join(errs...)
}

// isAbsent reports whether an RTM_DELADDR error means the address was not
// there: EADDRNOTAVAIL (inet_rtm_deladdr, inet6_addr_del), ENODEV (the
// interface vanished after the lookup), ENXIO (no IPv6 on the interface) or
// ENOENT.
func isAbsent(err error) bool {
	return errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) ||
		errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO)
}

// addressMessage returns the RTM_NEWADDR/RTM_DELADDR body for p on the
// interface with the given index. IFA_LOCAL and IFA_ADDRESS are both p.Addr(),
// as "ip addr add" sends them for an address without a peer.
func addressMessage(index uint32, p netip.Prefix) *ifAddrMsg {
	m := &ifAddrMsg{
		Family:    unix.AF_INET,
		PrefixLen: uint8(p.Bits()),
		Scope:     unix.RT_SCOPE_UNIVERSE,
		Index:     index,
		Address:   p.Addr(),
		Local:     p.Addr(),
	}
	if p.Addr().Is6() {
		m.Family = unix.AF_INET6
		// The kernel reads IFA_FLAGS when present and ifa_flags otherwise;
		// set both so older kernels agree.
		m.Flags = unix.IFA_F_NODAD
		m.AttrFlags = unix.IFA_F_NODAD
		return m
	}
	if p.Bits() < 31 {
		m.Broadcast = broadcast(p)
	}
	return m
}

// broadcast returns the directed broadcast address of an IPv4 prefix: the
// address with all host bits set.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	bits := p.Bits()
	for i := range a {
		// Host bits of byte i: those at positions >= bits.
		if n := bits - 8*i; n < 8 {
			mask := byte(0xff)
			if n > 0 {
				mask >>= n
			}
			a[i] |= mask
		}
	}
	return netip.AddrFrom4(a)
}

// Has reports whether p (address and prefix length) is configured on the
// interface. A missing interface is an error wrapping ErrNoInterface.
func (l *Linux) Has(ctx context.Context, p netip.Prefix) (bool, error) {
	if l.closed.Load() {
		return false, fmt.Errorf("vip: has on %s: %w", l.ifname, net.ErrClosed)
	}
	if err := checkPrefix(p); err != nil {
		return false, err
	}
	c, done, err := dialRoute(ctx)
	if err != nil {
		return false, fmt.Errorf("vip: has on %s: %w", l.ifname, err)
	}
	defer done()
	ifi, err := getLink(c, l.ifname)
	if err != nil {
		return false, fmt.Errorf("vip: has: %w", err)
	}

	family := uint8(unix.AF_INET)
	if p.Addr().Is6() {
		family = unix.AF_INET6
	}
	bodies, err := execute(c, unix.RTM_GETADDR, nl.Request|nl.Dump, &ifAddrMsg{Family: family}, unix.RTM_NEWADDR)
	if err != nil {
		return false, fmt.Errorf("vip: has: list addresses: %w", err)
	}
	for _, b := range bodies {
		var am ifAddrMsg
		if err := am.UnmarshalBinary(b); err != nil {
			return false, fmt.Errorf("vip: has: list addresses: %w", err)
		}
		if am.Family != family || am.Index != uint32(ifi.Index) || int(am.PrefixLen) != p.Bits() {
			continue
		}
		// IFA_LOCAL is the address itself; IFA_ADDRESS is the peer when
		// there is one, and the only attribute for IPv6 without a peer.
		a := am.Local
		if !a.IsValid() {
			a = am.Address
		}
		if a.IsValid() && a.Unmap() == p.Addr() {
			return true, nil
		}
	}
	return false, nil
}

// Announce implements carp.Announcer. Frames leave through an AF_PACKET socket
// with the interface's own MAC as Ethernet source (the address lives on the
// real MAC, as with ucarp or keepalived without use_vmac):
//
//   - IPv4: to ff:ff:ff:ff:ff:ff, an ARP request then an ARP reply, both
//     with sender = target = the address (see gratuitousARP for the target
//     hardware address);
//   - IPv6: to 33:33:00:00:00:01, an unsolicited Neighbor Advertisement
//     from the address itself to ff02::1, hop limit 255, Override set and
//     Router set if /proc/sys/net/ipv6/conf/<iface>/forwarding is 1, with
//     a Target Link-Layer Address option. Going through AF_PACKET means it
//     works whatever the address's DAD state and socket options.
//
// On a write error Announce stops sending that family and reports it.
func (l *Linux) Announce(ctx context.Context, addrs []netip.Addr) error {
	return l.AnnounceAs(ctx, addrs, nil)
}

// AnnounceAs is Announce with hw, when not nil, as the hardware address
// the frames announce (the ARP sender and target hardware addresses, the
// NA's target link-layer address) instead of the interface's: a balanced
// cluster's MAC. The Ethernet source is always the interface's own MAC,
// so a switch never learns hw from these frames (ip-stealth relies on it,
// and a multicast MAC is no valid source).
func (l *Linux) AnnounceAs(ctx context.Context, addrs []netip.Addr, hw net.HardwareAddr) error {
	if l.closed.Load() {
		return fmt.Errorf("vip: announce on %s: %w", l.ifname, net.ErrClosed)
	}
	var errs []error
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		a = a.WithZone("")
		if err := checkAddr(a); err != nil {
			errs = append(errs, err)
			continue
		}
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	if len(v4)+len(v6) == 0 {
		return errors.Join(errs...)
	}
	if err := ctx.Err(); err != nil {
		return errors.Join(append(errs, fmt.Errorf("vip: announce on %s: %w", l.ifname, err))...)
	}
	ifi, err := l.link(ctx)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("vip: announce: %w", err))...)
	}
	if len(ifi.HardwareAddr) != ethAddrLen {
		return errors.Join(append(errs, fmt.Errorf("vip: announce on %s: %w", l.ifname, errNotEthernet))...)
	}
	as := ifi.HardwareAddr
	if len(hw) == ethAddrLen {
		as = hw
	}

	if len(v4) > 0 {
		frames := make([][]byte, 0, 2*len(v4))
		for _, a := range v4 {
			for _, p := range gratuitousARP(as, a) {
				f, err := arpFrame(ifi.HardwareAddr, p)
				if err != nil {
					return err // a bug: the inputs were checked
				}
				frames = append(frames, f)
			}
		}
		if err := l.send(ctx, ifi, etherTypeARP, frames); err != nil {
			errs = append(errs, err)
		} else {
			l.log.Debug("sent gratuitous ARP request and reply", "op", "announce", "vip", v4)
		}
	}
	if len(v6) > 0 {
		router := l.forwarding()
		frames := make([][]byte, 0, len(v6))
		for _, a := range v6 {
			f, err := naFrame(ifi.HardwareAddr, unsolicitedNA(as, a, router))
			if err != nil {
				return err // a bug: the inputs were checked
			}
			frames = append(frames, f)
		}
		if err := l.send(ctx, ifi, etherTypeIPv6, frames); err != nil {
			errs = append(errs, err)
		} else {
			l.log.Debug("sent unsolicited neighbor advertisement", "op", "announce", "vip", v6, "router", router)
		}
	}
	return errors.Join(errs...)
}

// send writes frames through one AF_PACKET socket bound to ifi for the given
// EtherType, and closes it.
func (l *Linux) send(ctx context.Context, ifi *net.Interface, etherType int, frames [][]byte) error {
	pc, err := l.listen(ifi, etherType)
	if err != nil {
		return fmt.Errorf("vip: announce on %s: open packet socket: %w", l.ifname, err)
	}
	defer pc.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = pc.SetWriteDeadline(d)
	}
	stop := afterFunc(ctx, func() { _ = pc.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()

	for i, f := range frames {
		h, _, _ := parseEthernet(f) // frames we built: cannot fail
		if _, err := pc.WriteTo(f, &rawsock.Addr{HardwareAddr: h.Destination}); err != nil {
			return fmt.Errorf("vip: announce on %s: %d of %d frames (EtherType %#04x) not sent: %w",
				l.ifname, len(frames)-i, len(frames), etherType, err)
		}
	}
	return nil
}

// dropAll is a classic BPF program of one instruction, "ret #0", that
// accepts no packet: announcement sockets only send, and so queue nothing
// while they are open.
var dropAll = []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}

// listenPacket opens a SOCK_RAW AF_PACKET socket on ifi (we write whole
// Ethernet frames) for the EtherType protocol.
func listenPacket(ifi *net.Interface, protocol int) (net.PacketConn, error) {
	c, err := rawsock.Listen(ifi, protocol, dropAll)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ipv6Forwarding reports whether IPv6 forwarding is enabled on the interface,
// which makes us a router and sets the R flag in our advertisements (RFC
// 4861, Section 4.4). Unreadable means no (IPv6 disabled, interface gone).
func ipv6Forwarding(ifname string) bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifname + "/forwarding")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// kernelLink looks the interface up by name over rtnetlink.
func (l *Linux) kernelLink(ctx context.Context) (*net.Interface, error) {
	c, done, err := dialRoute(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return getLink(c, l.ifname)
}

// dialRoute opens an rtnetlink socket for one call and makes ctx interrupt
// its reads (its deadline, and its cancellation through a past deadline).
// done closes it.
func dialRoute(ctx context.Context) (c *nl.Conn, done func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	c, err = dialRouteConn()
	if err != nil {
		return nil, nil, fmt.Errorf("dial rtnetlink: %w", err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetReadDeadline(d)
	}
	stop := afterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	return c, func() { stop(); _ = c.Close() }, nil
}

// afterFunc is context.AfterFunc whose stop function also waits for f if f
// has already started, so that f never outlives its caller (nor touches a
// socket after the caller closed it).
func afterFunc(ctx context.Context, f func()) (stop func()) {
	done := make(chan struct{})
	stopf := context.AfterFunc(ctx, func() {
		defer close(done)
		f()
	})
	return func() {
		if !stopf() {
			<-done
		}
	}
}

// getLink asks the kernel for the interface by name (RTM_GETLINK with
// IFLA_IFNAME), so the answer is never a stale index. The returned
// net.Interface has Index, Name, MTU and HardwareAddr set, and Flags left
// zero (see linkUp for the link state).
func getLink(c *nl.Conn, name string) (*net.Interface, error) {
	lm, err := getLinkMessage(c, name)
	if err != nil {
		return nil, err
	}
	return &net.Interface{Index: int(lm.Index), Name: name, MTU: int(lm.MTU), HardwareAddr: lm.Address}, nil
}

// getLinkMessage returns the kernel's RTM_NEWLINK answer for the named link.
func getLinkMessage(c *nl.Conn, name string) (*ifInfoMsg, error) {
	bodies, err := execute(c, unix.RTM_GETLINK, nl.Request, &ifInfoMsg{Family: unix.AF_UNSPEC, Name: name}, unix.RTM_NEWLINK)
	if errors.Is(err, unix.ENODEV) {
		return nil, fmt.Errorf("%s: %w", name, ErrNoInterface)
	}
	if err != nil {
		return nil, fmt.Errorf("get link %s: %w", name, err)
	}
	for _, b := range bodies {
		var lm ifInfoMsg
		if err := lm.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("get link %s: %w", name, err)
		}
		return &lm, nil
	}
	return nil, fmt.Errorf("get link %s: no link in the kernel's answer", name)
}
