package carp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/rawsock"
	"golang.org/x/sys/unix"
)

// Ethernet multicast destinations of the CARP groups
// (docs/carp-protocol.md#encapsulation).
var (
	mac4 = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}
	mac6 = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x12}
)

// VirtualMAC returns 00:00:5e:00:01:VHID, the source of carpd's multicast
// adverts as of the BSD kernels (docs/carp-protocol.md#virtual-mac). (ucarp
// uses 00:00:5e:00:00:VHID.)
func VirtualMAC(vhid uint8) net.HardwareAddr {
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, vhid}
}

// IfaceStats counts packets dropped before they reach a vhost.
type IfaceStats struct {
	UnknownVHID uint64 `json:"unknown_vhid"`
	Short       uint64 `json:"too_short"`
	ReadErrors  uint64 `json:"read_errors"`
}

// Iface owns the CARP sockets of one interface: raw IPv4 and IPv6 sockets
// of protocol 112 bound to the device (receive, and unicast send), and an
// AF_PACKET socket that sends multicast adverts with the virtual MAC as
// Ethernet source. Two reader goroutines dispatch received packets to the
// attached virtual hosts by vhid; Close stops them and waits.
type Iface struct {
	name  string
	index int // the interface's index, for unicast IPv6 adverts
	log   *logx.Logger
	raw4  *net.IPConn // IPv4, IP_HDRINCL: carpd writes the header
	raw6  *net.IPConn // IPv6, with the hop limit and destination of each packet
	eth   *rawsock.Conn
	wg    sync.WaitGroup

	frameMu sync.Mutex // guards frame
	frame   []byte     // the multicast advert being sent, reused

	mu     sync.RWMutex // guards vhosts, prefixes and vips
	vhosts map[uint8]*VHost
	pfx    map[uint8][]netip.Prefix // the VIPs of each attached vhost
	vips   map[netip.Addr]bool      // every VIP of every attached vhost

	addrs IfaceAddrs // the interface's addresses, kept current by its owner

	readers [2]*advReader // the reader goroutines', IPv4 and IPv6
	drainMu sync.Mutex
	drain   [2]*advReader // Drain's own readers (buffers), IPv4 and IPv6

	unknown, short, readErrs atomic.Uint64
}

// OpenIface opens the sockets of interface name and starts its readers.
// addrs gives the interface's addresses (the daemon's one rtnetlink
// watcher); nil reads them from the kernel at every use, which is current
// but costs a netlink dump per advert.
func OpenIface(name string, addrs IfaceAddrs, log *logx.Logger) (_ *Iface, err error) {
	if log == nil {
		log = logx.New(logx.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	if addrs == nil {
		addrs = kernelAddrs{}
	}
	i := &Iface{name: name, index: ifi.Index, log: log.With("iface", name), addrs: addrs, vhosts: map[uint8]*VHost{}, pfx: map[uint8][]netip.Prefix{}}
	defer func() {
		if err != nil {
			i.closeSockets()
		}
	}()

	// ListenIP, not ListenPacket: the generic form goes through the
	// resolver, which links Go's whole DNS client (package/SIZE.md).
	c4, err := net.ListenIP(fmt.Sprintf("ip4:%d", IPProto), &net.IPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, fmt.Errorf("raw IPv4 socket: %w", err)
	}
	if err := bindToDevice(c4, name); err != nil {
		c4.Close()
		return nil, err
	}
	i.raw4 = c4
	if err := setsockopt(c4, func(fd int) error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1) }); err != nil {
		return nil, err
	}
	if err := setsockopt(c4, func(fd int) error {
		return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &unix.IPMreqn{Multiaddr: Group4.As4(), Ifindex: int32(ifi.Index)})
	}); err != nil {
		return nil, fmt.Errorf("joining %s: %w", Group4, err)
	}
	_ = setsockopt(c4, func(fd int) error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0) })
	_ = setsockopt(c4, func(fd int) error {
		return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)})
	})

	setPriority(c4)

	c6, err := net.ListenIP(fmt.Sprintf("ip6:%d", IPProto), &net.IPAddr{IP: net.IPv6unspecified})
	if err != nil {
		return nil, fmt.Errorf("raw IPv6 socket: %w", err)
	}
	if err := bindToDevice(c6, name); err != nil {
		c6.Close()
		return nil, err
	}
	i.raw6 = c6
	for _, opt := range []int{unix.IPV6_RECVHOPLIMIT, unix.IPV6_RECVPKTINFO} {
		if err := setsockopt(c6, func(fd int) error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, opt, 1) }); err != nil {
			return nil, err
		}
	}
	// IPv6 may be disabled on the interface: then there is no IPv6 CARP.
	if err := setsockopt(c6, func(fd int) error {
		return unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_ADD_MEMBERSHIP, &unix.IPv6Mreq{Multiaddr: Group6.As16(), Interface: uint32(ifi.Index)})
	}); err != nil {
		i.log.Warn("IPv6 CARP unavailable", "err", err)
	}
	_ = setsockopt(c6, func(fd int) error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0) })
	setPriority(c6)

	// Protocol 0: this socket only sends, so it must not receive anything.
	if i.eth, err = rawsock.Listen(ifi, 0, nil); err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}

	for n, c := range [2]*net.IPConn{i.raw4, i.raw6} {
		if i.readers[n], err = newReader(c, n == 1); err != nil {
			return nil, err
		}
	}
	i.wg.Add(2)
	go i.read(i.readers[0])
	go i.read(i.readers[1])
	return i, nil
}

// advertPriority is the socket priority of adverts (SO_PRIORITY): 6,
// TC_PRIO_INTERACTIVE, which the default qdiscs (pfifo_fast's priomap, and
// the band of fq_codel's and cake's diffserv that TOS LOWDELAY selects)
// send ahead of bulk traffic, so a busy uplink does not delay them.
const advertPriority = 6

// setPriority gives c's packets advertPriority; a kernel that refuses it
// sends them at the default priority.
func setPriority(c *net.IPConn) {
	_ = setsockopt(c, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PRIORITY, advertPriority) })
}

// setsockopt sets a socket option of c with set, and returns its error as
// golang.org/x/net's ipv4 and ipv6 packages did ("set ip: setsockopt: ...").
func setsockopt(c *net.IPConn, set func(fd int) error) error {
	sc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) { serr = set(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return &net.OpError{Op: "set", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Err: os.NewSyscallError("setsockopt", serr)}
	}
	return nil
}

func bindToDevice(c net.PacketConn, name string) error {
	sc, err := c.(*net.IPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, name)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("binding to %s: %w", name, serr)
	}
	return nil
}

// Name returns the interface name.
func (i *Iface) Name() string { return i.name }

// Attach routes the adverts of cfg.VHID to v. Attaching again with a new
// configuration updates the set of VIPs, which are never used as source.
func (i *Iface) Attach(v *VHost, cfg VHostConfig) {
	i.mu.Lock()
	i.vhosts[cfg.VHID] = v
	i.pfx[cfg.VHID] = cfg.Addresses
	i.rebuildLocked()
	i.mu.Unlock()
}

// Detach stops routing adverts of vhid.
func (i *Iface) Detach(vhid uint8) {
	i.mu.Lock()
	delete(i.vhosts, vhid)
	delete(i.pfx, vhid)
	i.rebuildLocked()
	i.mu.Unlock()
}

func (i *Iface) rebuildLocked() {
	i.vips = map[netip.Addr]bool{}
	for _, ps := range i.pfx {
		for _, p := range ps {
			i.vips[p.Addr()] = true
		}
	}
}

// Len returns the number of attached vhosts.
func (i *Iface) Len() int {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return len(i.vhosts)
}

// Stats returns the interface-level drop counters.
func (i *Iface) Stats() IfaceStats {
	return IfaceStats{UnknownVHID: i.unknown.Load(), Short: i.short.Load(), ReadErrors: i.readErrs.Load()}
}

// Close closes the sockets and waits for the readers to exit.
func (i *Iface) Close() error {
	i.closeSockets()
	i.wg.Wait()
	return nil
}

func (i *Iface) closeSockets() {
	if i.raw4 != nil {
		i.raw4.Close()
	}
	if i.raw6 != nil {
		i.raw6.Close()
	}
	if i.eth != nil {
		i.eth.Close()
	}
}

func (i *Iface) dispatch(p rxPacket) {
	if len(p.payload) < 2 {
		i.short.Add(1)
		return
	}
	i.mu.RLock()
	v := i.vhosts[p.payload[1]]
	i.mu.RUnlock()
	if v == nil {
		i.unknown.Add(1)
		return
	}
	v.deliver(p)
}

// readErr handles a read error: nil to go on, or done when the socket is
// closed. A persistent error is logged and slowed down, never spun on.
func (i *Iface) readErr(err error) (done bool) {
	if errors.Is(err, net.ErrClosed) {
		return true
	}
	if i.readErrs.Add(1)%100 == 1 {
		i.log.Warn("reading adverts", "err", err)
	}
	time.Sleep(10 * time.Millisecond)
	return false
}

// read runs one of the readers until its socket is closed.
func (i *Iface) read(r *advReader) {
	defer i.wg.Done()
	for {
		if err := r.next(i, true); err != nil && i.readErr(err) {
			return
		}
	}
}

// advReader reads adverts from one of the raw sockets and dispatches them.
type advReader struct {
	rc   syscall.RawConn
	v6   bool
	buf  []byte
	oob  []byte
	from *net.IPAddr  // reused: parseIPv6Packet copies the address
	busy atomic.Int32 // 1 while a read is in flight (next)
}

// newReader makes the reader of c, the IPv6 socket when v6. Not inlined:
// read4, read6 and Drain each make readers, and the copies cost size.
//
//go:noinline
func newReader(c *net.IPConn, v6 bool) (*advReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &advReader{rc: rc, v6: v6, buf: make([]byte, 1500)}
	if v6 {
		r.oob, r.from = make([]byte, oob6Len), &net.IPAddr{IP: make(net.IP, net.IPv6len)}
	}
	return r, nil
}

// next reads one packet and dispatches it. With wait it waits for one in
// the runtime's poller; without, it returns errNoPacket when none is
// queued.
func (r *advReader) next(i *Iface, wait bool) error {
	// busy counts this read from before the system call until its packet
	// is dispatched (Drain waits for it). Only this reader's goroutine
	// changes it.
	busy := &r.busy
	defer func() {
		if busy.Load() > 0 {
			busy.Add(-1)
		}
	}()
	if !r.v6 {
		n, err := rawRead(r.rc, r.buf, wait, busy)
		if err == nil {
			err = checkIPv4Header(r.buf[:n])
		}
		if err != nil {
			return err
		}
		h := r.buf[:int(r.buf[0]&0x0f)<<2]
		i.dispatch(rxPacket{src: netip.AddrFrom4([4]byte(h[12:16])), dst: netip.AddrFrom4([4]byte(h[16:20])),
			ttl: int(h[8]), payload: r.buf[len(h):n]}) // Deliver does not keep it
		return nil
	}
	n, oobn, err := rawRecvmsg6(r.rc, r.buf, r.oob, r.from.IP, wait, busy)
	var p rxPacket
	if err == nil {
		p, err = parseIPv6Packet(r.buf[:n], r.oob[:oobn], r.from)
	}
	if err != nil {
		return err
	}
	i.dispatch(p)
	return nil
}

// errNoPacket: a read that does not wait found no packet queued.
var errNoPacket = errors.New("carp: no packet queued")

// Drain dispatches, without waiting, every advert the kernel holds queued
// on the interface's sockets. A backup whose master-down timer fires calls
// it first (VHost.Run): when carpd was not scheduled for a while, the
// timer and the master's advert become ready together, and the advert,
// which arrived in time, must count before the timer does.
func (i *Iface) Drain() {
	i.drainMu.Lock()
	defer i.drainMu.Unlock()
	for n, c := range [2]*net.IPConn{i.raw4, i.raw6} {
		if i.drain[n] == nil {
			r, err := newReader(c, n == 1)
			if err != nil {
				continue
			}
			i.drain[n] = r
		}
		// Bounded: a flood is the readers' to handle. Any error (no
		// packet queued, a closed socket) ends it.
		for range 64 {
			if i.drain[n].next(i, false) != nil {
				break
			}
		}
	}
	// A packet a reader has read but not yet queued for its vhost: give
	// the reader the moment it needs (bounded).
	for range 1000 {
		if i.readers[0].busy.Load() == 0 && i.readers[1].busy.Load() == 0 {
			return
		}
		runtime.Gosched()
	}
}

// rawRead reads one packet from the raw socket of rc into buf, waiting in
// the runtime's poller, with a raw read(2): the socket is non-blocking, and
// unlike net.IPConn.Read a raw call does not wake the runtime's monitor
// thread (sysmon), which costs context switches at every advert
// (docs/performance.md).
func rawRead(rc syscall.RawConn, buf []byte, wait bool, busy *atomic.Int32) (int, error) {
	var n uintptr
	var errno syscall.Errno
	read := func(fd uintptr) bool {
		busy.Add(1) // before the read: Drain must not miss a packet in flight
		n, _, errno = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		if errno == unix.EAGAIN {
			busy.Add(-1)
		}
		return !wait || errno != unix.EAGAIN
	}
	err := rawDo(rc, wait, read)
	if err != nil {
		return 0, err
	}
	if errno == unix.EAGAIN {
		return 0, errNoPacket
	}
	if errno != 0 {
		return 0, os.NewSyscallError("read", errno)
	}
	return int(n), nil
}

// rawDo runs f on rc's fd: with wait through Read, which waits in the
// poller until f reports done (and holds the fd's read lock meanwhile);
// without, once through Control, which takes no read lock, so that Drain
// does not queue behind a reader waiting for the next packet.
func rawDo(rc syscall.RawConn, wait bool, f func(fd uintptr) bool) error {
	if wait {
		return rc.Read(f)
	}
	return rc.Control(func(fd uintptr) { f(fd) })
}

// rawRecvmsg6 is rawRead for the IPv6 socket: recvmsg(2) with control
// messages into oob and the source address into from (16 bytes).
func rawRecvmsg6(rc syscall.RawConn, buf, oob []byte, from net.IP, wait bool, busy *atomic.Int32) (n, oobn int, err error) {
	var sa unix.RawSockaddrInet6
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	msg := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&sa)), Namelen: unix.SizeofSockaddrInet6, Iov: &iov, Iovlen: 1, Control: &oob[0]}
	msg.SetControllen(len(oob))
	var r uintptr
	var errno syscall.Errno
	err = rawDo(rc, wait, func(fd uintptr) bool {
		msg.Namelen, msg.Flags = unix.SizeofSockaddrInet6, 0
		msg.SetControllen(len(oob))
		busy.Add(1)
		r, _, errno = unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), 0)
		if errno == unix.EAGAIN {
			busy.Add(-1)
		}
		return !wait || errno != unix.EAGAIN
	})
	if err != nil {
		return 0, 0, err
	}
	if errno == unix.EAGAIN {
		return 0, 0, errNoPacket
	}
	if errno != 0 {
		return 0, 0, os.NewSyscallError("recvmsg", errno)
	}
	copy(from, sa.Addr[:])
	return int(r), int(msg.Controllen), nil
}

// Source implements Sender: the interface's first IPv4 address, or its
// first IPv6 link-local address, that is not a VIP of ours.
func (i *Iface) Source(v6 bool) netip.Addr {
	addrs := i.addrs.Addrs(i.name)
	i.mu.RLock()
	defer i.mu.RUnlock()
	for _, a := range addrs {
		a = a.Unmap()
		if i.vips[a] {
			continue
		}
		if v6 && a.Is6() && a.IsLinkLocalUnicast() || !v6 && a.Is4() {
			return a
		}
	}
	return netip.Addr{}
}

// IsLocal implements Sender: a is an address of the interface, or one of
// our VIPs (which the kernel has once we added it; checked here too, so a
// VIP counts as ours from the moment it is configured).
func (i *Iface) IsLocal(a netip.Addr) bool {
	a = a.Unmap()
	i.mu.RLock()
	vip := i.vips[a]
	i.mu.RUnlock()
	if vip {
		return true
	}
	for _, x := range i.addrs.Addrs(i.name) {
		if x.Unmap() == a {
			return true
		}
	}
	return false
}

// kernelAddrs is OpenIface's IfaceAddrs without a watcher: it asks the
// kernel every time.
type kernelAddrs struct{}

func (kernelAddrs) Addrs(ifname string) []netip.Addr {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil
	}
	as, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// Sizes of the headers carpd writes itself.
const (
	ethHdrLen   = 14
	ipv4HdrLen  = 20
	ipv6HdrLen  = 40
	tosLowDelay = 0x10 // IPTOS_LOWDELAY, as OpenBSD and ucarp send
)

// Send implements Sender. Multicast adverts are written as whole Ethernet
// frames with the virtual MAC as source; unicast adverts go through the raw
// IP sockets so the kernel resolves the peer's MAC (their Ethernet source is
// then the interface's own MAC, as with FreeBSD unicast).
func (i *Iface) Send(payload []byte, dst netip.Addr) error {
	if len(payload) < 2 {
		return fmt.Errorf("carp: short payload")
	}
	vhid := payload[1]
	v6 := dst.Is6()
	src := i.Source(v6)
	if !src.IsValid() {
		return fmt.Errorf("carp: %s has no usable IPv%d source address", i.name, map[bool]int{false: 4, true: 6}[v6])
	}
	if !dst.IsMulticast() {
		if v6 {
			// The interface goes in the control message, not as the
			// address's zone: a zone is looked up by name, in the
			// network namespace of the sending thread.
			_, _, err := i.raw6.WriteMsgIP(payload, appendIPv6Cmsgs(nil, src, i.index), &net.IPAddr{IP: dst.AsSlice()})
			return err
		}
		// ID and checksum 0: with IP_HDRINCL the kernel fills them in.
		hdr := []byte{0x45, tosLowDelay, 0, 0, 0, 0, 0x40, 0, TTL, IPProto, 0, 0} // DF
		binary.BigEndian.PutUint16(hdr[2:], uint16(ipv4HdrLen+len(payload)))
		hdr = append(append(hdr, src.AsSlice()...), dst.AsSlice()...)
		_, err := i.raw4.WriteToIP(append(hdr, payload...), &net.IPAddr{IP: dst.AsSlice()})
		return err
	}
	i.frameMu.Lock()
	defer i.frameMu.Unlock()
	frame := i.frame[:0]
	dmac := mac4
	if v6 {
		dmac = mac6
	}
	frame = append(frame, dmac...)
	frame = append(frame, VirtualMAC(vhid)...)
	if v6 {
		frame = binary.BigEndian.AppendUint16(frame, unix.ETH_P_IPV6)
		frame = appendIPv6Header(frame, src, dst, len(payload))
	} else {
		frame = binary.BigEndian.AppendUint16(frame, unix.ETH_P_IP)
		frame = appendIPv4Header(frame, src, dst, len(payload))
	}
	frame = append(frame, payload...)
	i.frame = frame
	return i.eth.SendFrame(frame)
}

// appendIPv4Header appends an IPv4 header as OpenBSD sends it: TOS
// LOWDELAY, DF, random ID, TTL 255, protocol 112.
func appendIPv4Header(b []byte, src, dst netip.Addr, payloadLen int) []byte {
	start := len(b)
	b = append(b, 0x45, tosLowDelay)
	b = binary.BigEndian.AppendUint16(b, uint16(ipv4HdrLen+payloadLen))
	b = binary.BigEndian.AppendUint16(b, uint16(rand.Uint32()))
	b = binary.BigEndian.AppendUint16(b, 0x4000) // DF
	b = append(b, TTL, IPProto, 0, 0)
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	binary.BigEndian.PutUint16(b[start+10:], Checksum(b[start:start+ipv4HdrLen]))
	return b
}

// appendIPv6Header appends an IPv6 header: traffic class 0, hop limit 255,
// next header 112.
func appendIPv6Header(b []byte, src, dst netip.Addr, payloadLen int) []byte {
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(payloadLen))
	b = append(b, IPProto, TTL)
	b = append(b, src.AsSlice()...)
	return append(b, dst.AsSlice()...)
}

// errShortHeader: a raw IPv4 socket gave less than the IPv4 header it
// announces (the kernel checks headers, so this is not expected).
var errShortHeader = errors.New("carp: IPv4 header too short")

// checkIPv4Header checks that b, from the raw IPv4 socket, starts with a
// whole IPv4 header.
func checkIPv4Header(b []byte) error {
	if len(b) < ipv4HdrLen {
		return errShortHeader
	}
	if l := int(b[0]&0x0f) << 2; l < ipv4HdrLen || len(b) < l {
		return errShortHeader
	}
	return nil
}

// oob6Len holds the two control messages the IPv6 socket asks for.
var oob6Len = unix.CmsgSpace(4) + unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// parseIPv6Packet makes the rxPacket of payload b from the IPv6 socket, its
// control messages oob and its source: the hop limit (IPV6_HOPLIMIT, -1
// without control messages) and the destination (IPV6_PKTINFO).
func parseIPv6Packet(b, oob []byte, from *net.IPAddr) (rxPacket, error) {
	p := rxPacket{payload: b, ttl: -1} // b is the reader's buffer: Deliver does not keep it
	if from != nil {
		p.src, _ = netip.AddrFromSlice(from.IP)
	}
	if len(oob) == 0 {
		return p, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return rxPacket{}, os.NewSyscallError("parse socket control message", err)
	}
	p.ttl = 0
	for _, m := range msgs {
		if m.Header.Level != unix.IPPROTO_IPV6 {
			continue
		}
		switch {
		case m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4:
			p.ttl = int(int32(binary.NativeEndian.Uint32(m.Data)))
		case m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
			p.dst = netip.AddrFrom16([16]byte(m.Data[:16]))
		}
	}
	return p, nil
}

// appendIPv6Cmsgs appends the control messages of a unicast IPv6 advert:
// hop limit TTL, and src as source on interface ifindex (IPV6_PKTINFO).
func appendIPv6Cmsgs(b []byte, src netip.Addr, ifindex int) []byte {
	b = appendCmsg(b, unix.IPV6_HOPLIMIT, binary.NativeEndian.AppendUint32(nil, TTL))
	a := src.As16()
	return appendCmsg(b, unix.IPV6_PKTINFO, binary.NativeEndian.AppendUint32(a[:], uint32(ifindex)))
}

// appendCmsg appends one IPPROTO_IPV6 control message.
func appendCmsg(b []byte, typ int, data []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, unix.CmsgSpace(len(data)))...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[start]))
	h.Level = unix.IPPROTO_IPV6
	h.Type = int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[start+unix.CmsgLen(0):], data)
	return b
}
