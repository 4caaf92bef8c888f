package lab

import "errors"

var (
	// ErrClosed is returned by a Lab's methods once Close has begun.
	ErrClosed = errors.New("lab: closed")
	// ErrTimeout is returned by Proc.Wait when the process is still running
	// at the deadline.
	ErrTimeout = errors.New("lab: timeout")
	// ErrNoNeighbor is returned by Host.Neigh when the neighbour table has
	// no entry for the address.
	ErrNoNeighbor = errors.New("lab: no neighbour entry")

	// errUnimplemented is returned on systems other than Linux.
	errUnimplemented = errors.New("lab: not implemented on this system")
)
