// Package leases reads and writes dnsmasq's DHCP lease file and computes
// the changes between two lease sets (DHCP lease sync, issue #12).
//
// The file (dnsmasq's lease.c, lease_update_file) has one lease a line:
//
//	EXPIRY MAC IP HOSTNAME CLIENTID
//
// EXPIRY is the Unix time the lease ends (0: never), MAC the hardware
// address as colon-separated hex pairs, prefixed with "TT-" (the ARP
// hardware type in hex) unless it is Ethernet with a non-empty address,
// IP the IPv4 address, HOSTNAME the client's name or "*", CLIENTID the
// DHCP client id as colon-separated hex pairs or "*". With DHCPv6 a line
// "duid XX:XX:..." (the server's DUID) follows the IPv4 leases, then the
// IPv6 ones (the MAC field is the IAID). Only IPv4 leases are synced
// (OpenWrt serves DHCPv6 with odhcpd): the DUID line and what follows are
// kept as they are, File.Tail.
package leases

import (
	"bytes"
	"errors"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Limits of one lease (also those of the sync record).
const (
	MaxHW       = 20  // hardware address bytes (DHCP chaddr is 16; dnsmasq allows 20)
	MaxHost     = 100 // host name bytes
	MaxClientID = 140 // client id bytes (RFC 4361's: type, IAID and a DUID of up to 130)
	// MaxLine bounds one line of the file.
	MaxLine = 1024
	// MaxLeases bounds a lease set read from a file.
	MaxLeases = 65536
	// MaxPeerLeases bounds the leases taken from the sync peer: a lease
	// event of the peer for an address beyond that many is refused
	// (dnsmasq's default dhcp-lease-max is 1000, OpenWrt's default pool
	// 150 addresses).
	MaxPeerLeases = 16384
	arphrdEther   = 1
)

// Lease is one lease of the file.
type Lease struct {
	Expiry   uint32     // Unix time the lease ends; 0: never
	Addr     netip.Addr // IPv4
	HWType   uint8      // the ARP hardware type (1: Ethernet)
	HW       string     // the hardware address bytes
	Host     string     // "" for "*"
	ClientID string     // the client id bytes; "" for "*"
}

// File is a lease file: the IPv4 leases, and the DHCPv6 part as it is.
type File struct {
	Leases []Lease
	// Other are the lines before Tail that are not in Leases, as they
	// are: those that do not parse, and those after MaxLeases leases. A
	// rewrite keeps them (after the leases): the file is dnsmasq's, and
	// what carpd cannot read is not its to drop.
	Other []string
	Tail  string // from the "duid" line on; "" when there is none
}

var errLine = errors.New("malformed lease line")

// Valid reports whether l is within the limits the file and the sync
// record can carry.
func (l *Lease) Valid() bool {
	return l.Addr.Is4() && len(l.HW) <= MaxHW && len(l.ClientID) <= MaxClientID && hostOK(l.Host)
}

func hostOK(h string) bool {
	if len(h) > MaxHost || h == "*" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// Parse reads a lease file. A line that does not parse is counted in bad
// and kept in Other (dnsmasq skips it); it returns the leases in the
// file's order.
func Parse(b []byte) (f File, bad int) {
	for len(b) > 0 {
		if bytes.HasPrefix(b, []byte("duid ")) {
			f.Tail = string(b)
			break
		}
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if len(line) == 0 {
			continue
		}
		if len(f.Leases) >= MaxLeases {
			f.Other = append(f.Other, string(line))
			continue
		}
		l, ok := parseLine(line)
		if !ok {
			f.Other = append(f.Other, string(line))
			bad++
			continue
		}
		f.Leases = append(f.Leases, l)
	}
	return f, bad
}

func parseLine(line []byte) (l Lease, ok bool) {
	if len(line) > MaxLine {
		return l, false
	}
	fs := strings.Fields(string(line))
	if len(fs) != 5 {
		return l, false
	}
	exp, err := strconv.ParseUint(fs[0], 10, 32)
	if err != nil {
		return l, false
	}
	l.Expiry = uint32(exp)
	if l.Addr, err = netip.ParseAddr(fs[2]); err != nil {
		return l, false
	}
	hw := fs[1]
	l.HWType = arphrdEther
	if len(hw) >= 3 && hw[2] == '-' {
		t, ok := unhex(hw[:2], 1)
		if !ok {
			return l, false
		}
		l.HWType, hw = t[0], hw[3:]
	}
	if l.HW, ok = unhex(hw, MaxHW); !ok {
		return l, false
	}
	if fs[3] != "*" {
		l.Host = fs[3]
	}
	if fs[4] != "*" {
		if l.ClientID, ok = unhex(fs[4], MaxClientID); !ok || l.ClientID == "" {
			return l, false
		}
	}
	return l, l.Valid()
}

// unhex reads colon-separated hex pairs ("" is no bytes), at most max.
func unhex(s string, max int) (string, bool) {
	if s == "" {
		return "", true
	}
	if (len(s)+1)%3 != 0 || (len(s)+1)/3 > max {
		return "", false
	}
	out := make([]byte, 0, (len(s)+1)/3)
	for i := 0; i < len(s); i += 3 {
		if i+2 < len(s) && s[i+2] != ':' {
			return "", false
		}
		h, l := hexVal(s[i]), hexVal(s[i+1])
		if h < 0 || l < 0 {
			return "", false
		}
		out = append(out, byte(h<<4|l))
	}
	return string(out), true
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

const hexDigits = "0123456789abcdef"

func appendHex(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexDigits[s[i]>>4], hexDigits[s[i]&15])
	}
	return b
}

// Append writes f as dnsmasq does: the IPv4 leases, then the DHCPv6
// part.
func (f *File) Append(b []byte) []byte {
	for i := range f.Leases {
		l := &f.Leases[i]
		b = strconv.AppendUint(b, uint64(l.Expiry), 10)
		b = append(b, ' ')
		if l.HWType != arphrdEther || l.HW == "" {
			b = append(b, hexDigits[l.HWType>>4], hexDigits[l.HWType&15], '-')
		}
		b = appendHex(b, l.HW)
		b = append(b, ' ')
		b = l.Addr.AppendTo(b)
		b = append(b, ' ')
		if l.Host == "" {
			b = append(b, '*')
		} else {
			b = append(b, l.Host...)
		}
		b = append(b, ' ')
		if l.ClientID == "" {
			b = append(b, '*')
		} else {
			b = appendHex(b, l.ClientID)
		}
		b = append(b, '\n')
	}
	for _, o := range f.Other {
		b = append(append(b, o...), '\n')
	}
	return append(b, f.Tail...)
}

// Op is what happened to a lease.
type Op uint8

const (
	Add     Op = iota // a new lease
	Renew             // a lease of a known address changed (usually its expiry)
	Release           // the lease is gone (released, or expired and pruned)
)

// Event is one change of a lease set.
type Event struct {
	Op    Op
	Lease Lease
}

// Set is a lease set by address.
type Set map[netip.Addr]Lease

// SetOf indexes leases by address (a later one of the same address wins).
func SetOf(ls []Lease) Set {
	s := make(Set, len(ls))
	for _, l := range ls {
		s[l.Addr] = l
	}
	return s
}

// Diff returns the events that turn old into cur, by address order.
func Diff(old, cur Set) []Event {
	var ev []Event
	for a, l := range cur {
		if o, ok := old[a]; !ok {
			ev = append(ev, Event{Add, l})
		} else if o != l {
			ev = append(ev, Event{Renew, l})
		}
	}
	for a, l := range old {
		if _, ok := cur[a]; !ok {
			ev = append(ev, Event{Release, l})
		}
	}
	sort.Slice(ev, func(i, j int) bool { return ev[i].Lease.Addr.Less(ev[j].Lease.Addr) })
	return ev
}

// later reports whether expiry a ends after b (0 is never).
func later(a, b uint32) bool {
	if a == 0 || b == 0 {
		return a == 0 && b != 0
	}
	return a > b
}

// Apply merges an event of the peer into s and reports whether s changed.
// Per address the later expiry wins (a tie goes to the event, so a
// renewal of the same expiry with a new host name is taken); a release
// removes the address's lease unless ours is a different client's or ends
// later.
func (s Set) Apply(e Event) bool {
	l := e.Lease
	cur, ok := s[l.Addr]
	if e.Op == Release {
		if !ok || later(cur.Expiry, l.Expiry) || !sameClient(&cur, &l) {
			return false
		}
		delete(s, l.Addr)
		return true
	}
	if ok && (cur == l || later(cur.Expiry, l.Expiry)) {
		return false
	}
	s[l.Addr] = l
	return true
}

func sameClient(a, b *Lease) bool {
	return a.HWType == b.HWType && a.HW == b.HW && a.ClientID == b.ClientID
}

// Sorted returns the leases of s by address.
func (s Set) Sorted() []Lease {
	out := make([]Lease, 0, len(s))
	for _, l := range s {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}
