package vip

// The few rtnetlink messages vip sends and reads, on internal/nl:
// RTM_NEWADDR/RTM_DELADDR/RTM_GETADDR with struct ifaddrmsg, and
// RTM_GETLINK/RTM_NEWLINK with struct ifinfomsg. The general library
// (jsimonetti/rtnetlink) linked the encoders of routes, rules and neighbours
// as well, about 130 KB of the MIPS binary (package/SIZE.md); the tests still
// use it as the reference codec.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// Layouts from include/uapi/linux/if_addr.h and rtnetlink.h, in host byte
// order:
//
//	struct ifaddrmsg {
//		__u8		ifa_family;
//		__u8		ifa_prefixlen;	/* The prefix length		*/
//		__u8		ifa_flags;	/* Flags			*/
//		__u8		ifa_scope;	/* Address scope		*/
//		__u32		ifa_index;	/* Link index			*/
//	};
//
//	struct ifinfomsg {
//		unsigned char	ifi_family;
//		unsigned char	__ifi_pad;
//		unsigned short	ifi_type;		/* ARPHRD_* */
//		int		ifi_index;		/* Link index	*/
//		unsigned	ifi_flags;		/* IFF_* flags	*/
//		unsigned	ifi_change;		/* IFF_* change mask */
//	};
const (
	ifaddrmsgLen = 8
	ifinfomsgLen = 16
)

// Operational states (IFLA_OPERSTATE), from include/uapi/linux/if.h:
//
//	enum {
//		IF_OPER_UNKNOWN,
//		IF_OPER_NOTPRESENT,
//		IF_OPER_DOWN,
//		IF_OPER_LOWERLAYERDOWN,
//		IF_OPER_TESTING,
//		IF_OPER_DORMANT,
//		IF_OPER_UP,
//	};
const (
	ifOperUnknown = 0
	ifOperUp      = 6
)

// Malformed rtnetlink messages.
var (
	errShortIfAddrMsg = errors.New("ifaddrmsg too short")
	errShortIfInfoMsg = errors.New("ifinfomsg too short")
)

// ifAddrMsg is an address message: the ifaddrmsg header and the attributes
// vip uses. A zero Address (and so no attributes) is a dump request.
type ifAddrMsg struct {
	Family    uint8
	PrefixLen uint8
	Flags     uint8 // ifa_flags: the low 8 bits of IFA_FLAGS
	Scope     uint8
	Index     uint32

	Address   netip.Addr // IFA_ADDRESS: the peer if there is one, else the address
	Local     netip.Addr // IFA_LOCAL: the address itself (IPv4)
	Broadcast netip.Addr // IFA_BROADCAST
	AttrFlags uint32     // IFA_FLAGS
}

// MarshalBinary encodes the header and, when Address is set, IFA_UNSPEC,
// IFA_ADDRESS, IFA_LOCAL and IFA_BROADCAST when set, and IFA_FLAGS: the
// bytes jsimonetti/rtnetlink sends for the same message.
func (m *ifAddrMsg) MarshalBinary() ([]byte, error) {
	b := make([]byte, ifaddrmsgLen)
	b[0], b[1], b[2], b[3] = m.Family, m.PrefixLen, m.Flags, m.Scope
	binary.NativeEndian.PutUint32(b[4:8], m.Index)
	if !m.Address.IsValid() {
		return b, nil
	}
	ae := nl.NewAttributeEncoder()
	ae.Uint16(unix.IFA_UNSPEC, 0)
	ae.Bytes(unix.IFA_ADDRESS, m.Address.AsSlice())
	if m.Local.IsValid() {
		ae.Bytes(unix.IFA_LOCAL, m.Local.AsSlice())
	}
	if m.Broadcast.IsValid() {
		ae.Bytes(unix.IFA_BROADCAST, m.Broadcast.AsSlice())
	}
	ae.Uint32(unix.IFA_FLAGS, m.AttrFlags)
	a, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return append(b, a...), nil
}

// UnmarshalBinary decodes an address message. Address attributes must be 4
// or 16 bytes long; other attributes are skipped.
func (m *ifAddrMsg) UnmarshalBinary(b []byte) error {
	if len(b) < ifaddrmsgLen {
		return errShortIfAddrMsg
	}
	*m = ifAddrMsg{Family: b[0], PrefixLen: b[1], Flags: b[2], Scope: b[3], Index: binary.NativeEndian.Uint32(b[4:8])}
	if len(b) == ifaddrmsgLen {
		return nil
	}
	ad := nl.NewAttributeDecoder(b[ifaddrmsgLen:])
	for ad.Next() {
		switch ad.Type() {
		case unix.IFA_ADDRESS:
			ad.Do(decodeAddr(&m.Address))
		case unix.IFA_LOCAL:
			ad.Do(decodeAddr(&m.Local))
		case unix.IFA_BROADCAST:
			ad.Do(decodeAddr(&m.Broadcast))
		case unix.IFA_FLAGS:
			m.AttrFlags = ad.Uint32()
		}
	}
	return ad.Err()
}

// decodeAddr decodes a 4- or 16-byte address attribute.
func decodeAddr(a *netip.Addr) func([]byte) error {
	return func(b []byte) error {
		if len(b) != 4 && len(b) != 16 {
			return fmt.Errorf("invalid IP address length: %d", len(b))
		}
		*a, _ = netip.AddrFromSlice(b)
		return nil
	}
}

// ifInfoMsg is a link message: the ifinfomsg header and the attributes vip
// uses. A zero ifInfoMsg is a dump request.
type ifInfoMsg struct {
	Family uint8
	Type   uint16 // ARPHRD_*
	Index  uint32
	Flags  uint32 // IFF_*
	Change uint32

	Name      string           // IFLA_IFNAME
	MTU       uint32           // IFLA_MTU
	Address   net.HardwareAddr // IFLA_ADDRESS
	OperState uint8            // IFLA_OPERSTATE; ifOperUnknown when absent
}

// MarshalBinary encodes the header and the attributes that are set, in
// jsimonetti/rtnetlink's order and bytes.
func (m *ifInfoMsg) MarshalBinary() ([]byte, error) {
	b := make([]byte, ifinfomsgLen)
	b[0] = m.Family
	binary.NativeEndian.PutUint16(b[2:4], m.Type)
	binary.NativeEndian.PutUint32(b[4:8], m.Index)
	binary.NativeEndian.PutUint32(b[8:12], m.Flags)
	binary.NativeEndian.PutUint32(b[12:16], m.Change)
	ae := nl.NewAttributeEncoder()
	n := 0
	if m.Name != "" {
		ae.String(unix.IFLA_IFNAME, m.Name)
		n++
	}
	if m.MTU != 0 {
		ae.Uint32(unix.IFLA_MTU, m.MTU)
		n++
	}
	if len(m.Address) != 0 {
		ae.Bytes(unix.IFLA_ADDRESS, m.Address)
		n++
	}
	if m.OperState != ifOperUnknown {
		ae.Uint8(unix.IFLA_OPERSTATE, m.OperState)
		n++
	}
	if n == 0 {
		return b, nil
	}
	a, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return append(b, a...), nil
}

// UnmarshalBinary decodes a link message; attributes other than the four
// above are skipped.
func (m *ifInfoMsg) UnmarshalBinary(b []byte) error {
	if len(b) < ifinfomsgLen {
		return errShortIfInfoMsg
	}
	*m = ifInfoMsg{
		Family: b[0],
		Type:   binary.NativeEndian.Uint16(b[2:4]),
		Index:  binary.NativeEndian.Uint32(b[4:8]),
		Flags:  binary.NativeEndian.Uint32(b[8:12]),
		Change: binary.NativeEndian.Uint32(b[12:16]),
	}
	if len(b) == ifinfomsgLen {
		return nil
	}
	ad := nl.NewAttributeDecoder(b[ifinfomsgLen:])
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_IFNAME:
			m.Name = ad.String()
		case unix.IFLA_MTU:
			m.MTU = ad.Uint32()
		case unix.IFLA_ADDRESS:
			m.Address = ad.Bytes()
		case unix.IFLA_OPERSTATE:
			m.OperState = ad.Uint8()
		}
	}
	return ad.Err()
}

// dialRouteConn opens a NETLINK_ROUTE socket in the calling thread's
// network namespace.
func dialRouteConn() (*nl.Conn, error) {
	return nl.Dial(unix.NETLINK_ROUTE, nil)
}

// execute sends one request and returns the bodies of the replies of type
// want (acknowledgements and other types are skipped).
func execute(c *nl.Conn, typ nl.HeaderType, flags nl.HeaderFlags,
	body interface{ MarshalBinary() ([]byte, error) }, want nl.HeaderType) ([][]byte, error) {
	b, err := body.MarshalBinary()
	if err != nil {
		return nil, err
	}
	msgs, err := c.Execute(nl.Message{Header: nl.Header{Type: typ, Flags: flags}, Data: b})
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, m := range msgs {
		if m.Header.Type == want {
			out = append(out, m.Data)
		}
	}
	return out, nil
}

// listLinks dumps every link (RTM_GETLINK with NLM_F_DUMP).
func listLinks(c *nl.Conn) ([]ifInfoMsg, error) {
	bodies, err := execute(c, unix.RTM_GETLINK, nl.Request|nl.Dump, &ifInfoMsg{}, unix.RTM_NEWLINK)
	if err != nil {
		return nil, err
	}
	links := make([]ifInfoMsg, len(bodies))
	for i, b := range bodies {
		if err := links[i].UnmarshalBinary(b); err != nil {
			return nil, err
		}
	}
	return links, nil
}
