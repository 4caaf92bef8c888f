//go:build !linux

package rawsock

import (
	"errors"
	"net"
	"time"
)

var errUnsupported = errors.New("rawsock: AF_PACKET needs Linux: " + errors.ErrUnsupported.Error())

// Conn is a SOCK_RAW AF_PACKET socket; there is none outside Linux.
type Conn struct{}

// Instruction is one classic BPF instruction (struct sock_filter).
type Instruction struct {
	Code   uint16
	Jt, Jf uint8
	K      uint32
}

// Listen fails outside Linux.
func Listen(*net.Interface, int, []Instruction) (*Conn, error) { return nil, errUnsupported }

func (*Conn) WriteTo([]byte, net.Addr) (int, error)  { return 0, errUnsupported }
func (*Conn) SendFrame([]byte) error                 { return errUnsupported }
func (*Conn) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, errUnsupported }
func (*Conn) Close() error                           { return errUnsupported }
func (*Conn) LocalAddr() net.Addr                    { return &Addr{} }
func (*Conn) SetDeadline(time.Time) error            { return errUnsupported }
func (*Conn) SetReadDeadline(time.Time) error        { return errUnsupported }
func (*Conn) SetWriteDeadline(time.Time) error       { return errUnsupported }
