package carp

import "errors"

// Errors returned by UnmarshalBinary for malformed advertisements. The runner
// maps each to a drop counter; callers branch on them with errors.Is.
var (
	// ErrBadLength: the payload is not exactly HeaderLen bytes. A truncated
	// header also wraps io.ErrUnexpectedEOF.
	ErrBadLength = errors.New("carp: bad advertisement length")
	// ErrBadChecksum: the Internet checksum over the 36-byte header is wrong.
	ErrBadChecksum = errors.New("carp: bad checksum")
	// ErrBadVersion: the version nibble is not 2 (VRRPv3 and others share
	// IP protocol 112).
	ErrBadVersion = errors.New("carp: bad version")
)
