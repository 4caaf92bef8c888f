package kernel

import (
	"errors"
	"fmt"
	"runtime"
)

var (
	// errUnimplemented is what everything returns where there is no
	// ctnetlink.
	errUnimplemented = fmt.Errorf("kernel: conntrack needs Linux, this is %s: %w", runtime.GOOS, errors.ErrUnsupported)

	// ErrClosed is returned by the methods of a closed Conntrack.
	ErrClosed = errors.New("kernel: conntrack closed")

	// errNoTimeout: a create needs CTA_TIMEOUT, and a flow with no time
	// left is not worth creating.
	errNoTimeout = errors.New("zero timeout")
	// errMappedAddr: conntrack keeps IPv4 flows with IPv4 addresses.
	errMappedAddr = errors.New("IPv4-mapped IPv6 address")
	// errICMPType: only ICMP queries (echo, timestamp, info, address
	// mask, node information) are tracked as entries of their own.
	errICMPType = errors.New("ICMP type has no reply type")
	// errNoTuple guards the delete builder: a CT_DELETE without a tuple
	// flushes the whole table.
	errNoTuple = errors.New("missing tuple")
	// errNoReply: the kernel did not answer a request of a batch.
	errNoReply = errors.New("no reply from the kernel")
	// errTruncated: a datagram did not fit the receive buffer.
	errTruncated = errors.New("netlink datagram truncated")
	// errShortDatagram: a netlink message runs past its datagram.
	errShortDatagram = errors.New("short netlink message")
)
