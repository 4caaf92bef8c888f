package nl

import "errors"

// ErrTruncated is a datagram larger than the buffer it was read into.
var ErrTruncated = errors.New("netlink: datagram truncated")

// zero is where an empty buffer points.
var zero byte
