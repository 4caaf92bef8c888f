package kernel

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// mdlayher/netlink's Receive keeps reading until NLMSG_DONE once a message
// has NLM_F_MULTI set, and ctnetlink sets NLM_F_MULTI on the single message
// answering a CT_GET (ctnetlink_fill_info: flags = portid ? NLM_F_MULTI :
// 0) without ever sending NLMSG_DONE: Receive blocks forever. So replies and events are read one datagram
// at a time here, through the socket's RawConn (deadlines still apply).

// recvDatagram reads one datagram into buf and returns it.
func recvDatagram(rc syscall.RawConn, buf []byte) ([]byte, error) {
	var (
		n     int
		flags int
		rerr  error
	)
	err := rc.Read(func(fd uintptr) bool {
		n, _, flags, _, rerr = unix.Recvmsg(int(fd), buf, nil, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	})
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("recvmsg: %w", rerr)
	}
	if flags&unix.MSG_TRUNC != 0 {
		return nil, errTruncated
	}
	return buf[:n], nil
}

// sendDatagram sends b, one or more requests, to the kernel in one
// sendmsg.
func sendDatagram(rc syscall.RawConn, b []byte) error {
	var serr error
	err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN && serr != unix.EINTR
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("sendmsg: %w", serr)
	}
	return nil
}

// appendMessage appends m with sequence number seq, as the kernel reads
// it:
//
//	struct nlmsghdr {
//		__u32		nlmsg_len;	/* Length of message including header */
//		__u16		nlmsg_type;	/* Message content */
//		__u16		nlmsg_flags;	/* Additional flags */
//		__u32		nlmsg_seq;	/* Sequence number */
//		__u32		nlmsg_pid;	/* Sending process port ID */
//	};
//
// followed by the payload, padded to NLMSG_ALIGNTO (4). nlmsg_pid stays 0:
// the kernel answers the socket's port id.
func appendMessage(b []byte, m netlink.Message, seq uint32) []byte {
	b = binary.NativeEndian.AppendUint32(b, uint32(nlmsgHeaderLen+len(m.Data)))
	b = binary.NativeEndian.AppendUint16(b, uint16(m.Header.Type))
	b = binary.NativeEndian.AppendUint16(b, uint16(m.Header.Flags))
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, m.Data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// parseDatagram splits a datagram into messages. The messages alias b.
func parseDatagram(b []byte) ([]netlink.Message, error) {
	var out []netlink.Message
	for len(b) >= nlmsgHeaderLen {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHeaderLen || l > len(b) {
			return out, errShortDatagram
		}
		al := min((l+3)&^3, len(b))
		var m netlink.Message
		// UnmarshalBinary wants the aligned length; the kernel pads
		// every message but the last may end at the datagram's end.
		if err := m.UnmarshalBinary(b[:al]); err != nil {
			return out, err
		}
		out = append(out, m)
		b = b[al:]
	}
	return out, nil
}

// ackErrno returns the errno of an NLMSG_ERROR message (0: an ack).
//
//	struct nlmsgerr {
//		int		error;
//		struct nlmsghdr msg;
//	};
func ackErrno(m netlink.Message) (unix.Errno, error) {
	if len(m.Data) < 4 {
		return 0, errShortDatagram
	}
	return unix.Errno(-int32(binary.NativeEndian.Uint32(m.Data))), nil
}
