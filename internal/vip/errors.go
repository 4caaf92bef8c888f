package vip

import "errors"

// Errors callers may branch on.
var (
	// ErrNoInterface reports that the named interface does not exist (at the
	// moment of the call: interfaces come and go, and every call looks the
	// name up again). Test with errors.Is.
	ErrNoInterface = errors.New("no such interface")
)

// Errors for malformed input. Truncated input is reported as
// io.ErrUnexpectedEOF; these sentinels report invalid content. Each is wrapped
// with context (and the "vip:" prefix) where it is returned.
var (
	// errUnimplemented is returned on operating systems other than Linux.
	errUnimplemented = errors.New("not implemented")

	// errInvalidPrefix reports a prefix that is not a valid IPv4 or IPv6
	// prefix (zero value, or an IPv4-mapped IPv6 address).
	errInvalidPrefix = errors.New("invalid prefix")

	// errInvalidAddr reports an address that is not a valid unicast IPv4 or
	// IPv6 address.
	errInvalidAddr = errors.New("invalid address")

	// errInvalidInterfaceName reports a name the kernel would refuse
	// (empty, longer than IFNAMSIZ-1, or containing '/', ':' or spaces).
	errInvalidInterfaceName = errors.New("invalid interface name")

	// errNotEthernet reports an interface without a 6-byte hardware address,
	// on which gratuitous ARP and NA make no sense (tun, wireguard, ...).
	errNotEthernet = errors.New("interface has no Ethernet address")

	// errInvalidHardwareAddr reports a hardware address that is not 6 bytes
	// long in a packet being marshalled.
	errInvalidHardwareAddr = errors.New("invalid Ethernet hardware address")

	// errInvalidARPPacket reports an ARP packet that is not Ethernet/IPv4
	// (RFC 826 hardware type 1, protocol type 0x0800, lengths 6 and 4).
	errInvalidARPPacket = errors.New("invalid ARP packet")

	// errInvalidNeighborAdvert reports an IPv6 packet that is not a valid
	// Neighbor Advertisement (RFC 4861, Section 7.1.2).
	errInvalidNeighborAdvert = errors.New("invalid neighbor advertisement")

	// errBadChecksum reports an ICMPv6 checksum mismatch.
	errBadChecksum = errors.New("bad ICMPv6 checksum")
)
