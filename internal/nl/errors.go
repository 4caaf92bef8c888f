package nl

import (
	"encoding/binary"
	"strconv"
	"syscall"
)

// OpError is an error of a netlink operation: a system call's (Err is an
// *os.SyscallError) or the kernel's answer to a request (Err is the
// syscall.Errno of an NLMSG_ERROR, with the extended ack's Message and
// Offset when the kernel sent them). errors.Is(err, unix.EEXIST) works on
// both.
type OpError struct {
	Op       string // "send", "receive", ...
	Err      error
	Message  string // NLMSGERR_ATTR_MSG
	Offset   int    // NLMSGERR_ATTR_OFFS
	Sequence uint32 // of the request the error answers, 0 for a system call
}

func (e *OpError) Error() string {
	s := "netlink " + e.Op + ": " + e.Err.Error()
	if e.Message != "" || e.Offset != 0 {
		s += ", offset: " + strconv.Itoa(e.Offset) + ", message: " + strconv.Quote(e.Message)
	}
	return s
}

func (e *OpError) Unwrap() error { return e.Err }

// Extended ack attributes (include/uapi/linux/netlink.h, enum
// nlmsgerr_attrs).
const (
	nlmsgerrAttrMsg  = 1
	nlmsgerrAttrOffs = 2
)

// CheckMessage returns the error an NLMSG_ERROR message, or an NLMSG_DONE
// ending a multipart reply, carries: nil for an ack (errno 0) and for any
// other message, an *OpError otherwise.
//
//	struct nlmsgerr {
//		int		error;
//		struct nlmsghdr msg;	/* the request, or only its header (Capped) */
//	};	/* then the extended ack's attributes (AcknowledgeTLVs) */
func CheckMessage(m Message) error {
	switch {
	case m.Header.Type == Error:
	case m.Header.Type == Done && m.Header.Flags&Multi != 0:
		if len(m.Data) == 0 {
			return nil
		}
	default:
		return nil
	}
	if len(m.Data) < 4 {
		return &OpError{Op: "receive", Err: errShortError, Sequence: m.Header.Sequence}
	}
	code := int32(binary.NativeEndian.Uint32(m.Data))
	if code == 0 {
		return nil
	}
	e := &OpError{Op: "receive", Err: syscall.Errno(-code), Sequence: m.Header.Sequence}
	if m.Header.Flags&AcknowledgeTLVs == 0 {
		return e
	}
	off := 4
	if m.Header.Type == Error {
		// The echoed request: its header only if Capped.
		off += HeaderLen
		if m.Header.Flags&Capped == 0 && len(m.Data) >= off {
			off = 4 + align(int(binary.NativeEndian.Uint32(m.Data[4:])))
		}
	}
	if off > len(m.Data) {
		return e
	}
	ad := NewAttributeDecoder(m.Data[off:])
	for ad.Next() {
		switch ad.Type() {
		case nlmsgerrAttrMsg:
			e.Message = ad.String()
		case nlmsgerrAttrOffs:
			e.Offset = int(ad.Uint32())
		}
	}
	return e
}
