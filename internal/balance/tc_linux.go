package balance

// The kernel side: a cls_bpf filter in the clsact ingress hook of the
// interface, installed and removed over rtnetlink. This is the one file
// that speaks netlink; it uses only nl.Dial, Conn.Execute, Message,
// Header and the flag constants, and encodes its attributes by hand.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// rtnetlink and tc constants (linux/rtnetlink.h, pkt_sched.h, pkt_cls.h).
const (
	rtmNewQdisc  = 36
	rtmNewFilter = 44
	rtmDelFilter = 45

	tcaKind    = 1
	tcaOptions = 2

	tcaBPFFD         = 6
	tcaBPFName       = 7
	tcaBPFFlags      = 8
	tcaBPFFlagDirect = 1

	tcHClsact       = 0xfffffff1
	tcHIngress      = 0xfffffff2 // TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)
	ethPAll         = 0x0003
	filterHandle    = 1
	tcmsgLen        = 20
	prioBase        = 0xc000 // + the first vhid
	packetMRMcast   = 0      // PACKET_MR_MULTICAST
	packetMRUnicast = 3      // PACKET_MR_UNICAST
)

// A Datapath is the ownership rule of one balanced virtual host installed
// in the kernel on one interface: frames to the cluster MAC are accepted by
// the NIC, marked as addressed to this host, and dropped at tc ingress
// unless this router owns their node. The program reads the owned mask from
// a BPF map, so changing it is one bpf(2) call, effective for the next
// packet.
type Datapath struct {
	mu      sync.Mutex
	conn    *nl.Conn
	member  int // packet socket holding the NIC's membership of the MAC
	mapFD   int
	link    int // the tcx link, or -1 when attached by a tc filter
	ifindex int
	mac     net.HardwareAddr
	nodes   int
	prio    uint16
	mask    uint32
	closed  bool
}

// ForceTC makes Open attach with a tc filter even where the kernel has tcx:
// for tests of the older path.
var ForceTC bool

// Open installs the datapath for a balanced virtual host whose first vhid
// is vhid, with nodes nodes and cluster MAC mac, on interface ifindex,
// owning no node until SetMask, and adds the MAC to the NIC's multicast or
// unicast address list for as long as the Datapath is open.
//
// On kernels with tcx (6.6 and later) the program is attached by a BPF
// link that lives as long as this process holds it: if carpd dies, the
// kernel detaches it, and the router stops routing frames sent to the
// cluster MAC. Older kernels get tc's clsact qdisc (added when the
// interface has none) and one cls_bpf filter in direct-action mode at
// priority 0xc000+vhid (so several balanced hosts share an interface);
// such a filter outlives a crash, with its last mask, until the next carpd
// replaces it.
func Open(ifindex int, vhid uint8, mac net.HardwareAddr, nodes int) (*Datapath, error) {
	d := &Datapath{member: -1, mapFD: -1, link: -1, ifindex: ifindex, mac: append(net.HardwareAddr(nil), mac...),
		nodes: nodes, prio: prioBase + uint16(vhid)}
	if err := d.open(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Datapath) open() error {
	var err error
	if d.mapFD, err = newMaskMap(); err != nil {
		return err
	}
	insns, err := Program(d.mac, d.nodes, d.mapFD)
	if err != nil {
		return err
	}
	prog, err := loadProgram(insns)
	if err != nil {
		return err
	}
	defer unix.Close(prog) // the link or filter holds its own reference
	if err := d.join(); err != nil {
		return err
	}
	if !ForceTC {
		if d.link, err = attachTCX(prog, d.ifindex); err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("balance: attach tcx: %w", err)
		}
		// No tcx: attach with tc.
	}
	if d.conn, err = nl.Dial(unix.NETLINK_ROUTE, nil); err != nil {
		return fmt.Errorf("balance: netlink: %w", err)
	}
	q := tcmsg(d.ifindex, 0xffff0000, tcHClsact, 0)
	q = attr(q, tcaKind, []byte("clsact\x00"))
	if err := d.exec(nl.Header{Type: rtmNewQdisc, Flags: nl.Request | nl.Acknowledge | nl.Create | nl.Excl}, q); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("balance: add clsact qdisc: %w", err)
	}
	var opts []byte
	opts = attr(opts, tcaBPFFD, binary.NativeEndian.AppendUint32(nil, uint32(prog)))
	opts = attr(opts, tcaBPFName, []byte(progName+"\x00"))
	opts = attr(opts, tcaBPFFlags, binary.NativeEndian.AppendUint32(nil, tcaBPFFlagDirect))
	m := tcmsg(d.ifindex, filterHandle, tcHIngress, filterInfo(d.prio))
	m = attr(m, tcaKind, []byte("bpf\x00"))
	m = attr(m, tcaOptions, opts)
	if err := d.exec(nl.Header{Type: rtmNewFilter, Flags: nl.Request | nl.Acknowledge | nl.Create | nl.Replace}, m); err != nil {
		return fmt.Errorf("balance: add tc filter: %w", err)
	}
	return nil
}

// SetMask makes the datapath accept exactly the nodes of mask (bit i: node
// i in vhid order), from the next packet on.
func (d *Datapath) SetMask(mask uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return net.ErrClosed
	}
	if err := setMapMask(d.mapFD, mask); err != nil {
		return fmt.Errorf("balance: set mask %#x: %w", mask, err)
	}
	d.mask = mask
	return nil
}

// Mask returns the mask last installed.
func (d *Datapath) Mask() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mask
}

// Close removes the filter (the clsact qdisc stays: others may use it) and
// the NIC's membership of the MAC. After Close no frame to the cluster MAC
// is routed by this host.
func (d *Datapath) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.conn != nil {
		m := tcmsg(d.ifindex, filterHandle, tcHIngress, filterInfo(d.prio))
		m = attr(m, tcaKind, []byte("bpf\x00"))
		if err := d.exec(nl.Header{Type: rtmDelFilter, Flags: nl.Request | nl.Acknowledge}, m); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("balance: delete tc filter: %w", err))
		}
		errs = append(errs, d.conn.Close())
	}
	if d.link >= 0 {
		unix.Close(d.link) // detaches the program
	}
	if d.member >= 0 {
		unix.Close(d.member)
	}
	if d.mapFD >= 0 {
		unix.Close(d.mapFD)
	}
	return errors.Join(errs...)
}

// join adds the MAC to the NIC's address filter through a packet socket
// that receives nothing (protocol 0): the kernel keeps the membership as
// long as the socket lives, so a crashed daemon leaves none behind.
func (d *Datapath) join() error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("balance: packet socket: %w", err)
	}
	mr := unix.PacketMreq{Ifindex: int32(d.ifindex), Type: packetMRUnicast, Alen: 6}
	if d.mac[0]&1 != 0 {
		mr.Type = packetMRMcast
	}
	copy(mr.Address[:], d.mac)
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
		unix.Close(fd)
		return fmt.Errorf("balance: add %s to interface %d: %w", d.mac, d.ifindex, err)
	}
	d.member = fd
	return nil
}

// exec sends one request and waits for its acknowledgement. Header types
// are untyped constants, so this file names no netlink type but Conn,
// Message and Header.
func (d *Datapath) exec(h nl.Header, data []byte) error {
	_, err := d.conn.Execute(nl.Message{Header: h, Data: data})
	return err
}

// filterInfo is tcm_info of a filter: the priority and the protocol
// (ETH_P_ALL) in network byte order, as a host-order u16.
func filterInfo(prio uint16) uint32 {
	proto := binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, ethPAll))
	return uint32(prio)<<16 | uint32(proto)
}

// tcmsg is struct tcmsg: family, padding, ifindex, handle, parent, info.
func tcmsg(ifindex int, handle, parent, info uint32) []byte {
	b := make([]byte, tcmsgLen)
	binary.NativeEndian.PutUint32(b[4:], uint32(int32(ifindex)))
	binary.NativeEndian.PutUint32(b[8:], handle)
	binary.NativeEndian.PutUint32(b[12:], parent)
	binary.NativeEndian.PutUint32(b[16:], info)
	return b
}

// attr appends one netlink attribute (length, type, value, padding to 4).
func attr(b []byte, typ uint16, v []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
