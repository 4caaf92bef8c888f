package nl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"syscall"
	"testing"
)

// errorMessage builds an NLMSG_ERROR answering req with errno (0: an ack)
// and, if msg is set, an extended ack.
func errorMessage(req Message, errno int32, msg string) Message {
	d := binary.NativeEndian.AppendUint32(nil, uint32(-errno))
	flags := HeaderFlags(0)
	if msg != "" {
		flags = Capped | AcknowledgeTLVs
		d = AppendMessage(d, Message{Header: req.Header})[:4+HeaderLen]
		ae := NewAttributeEncoder()
		ae.String(nlmsgerrAttrMsg, msg)
		ae.Uint32(nlmsgerrAttrOffs, 20)
		a, _ := ae.Encode()
		d = append(d, a...)
	} else {
		d = AppendMessage(d, req)
	}
	return Message{Header: Header{Type: Error, Flags: flags, Sequence: req.Header.Sequence}, Data: d}
}

func TestCheckMessage(t *testing.T) {
	req := Message{Header: Header{Type: 20, Flags: Request | Acknowledge, Sequence: 7, PID: 9}, Data: []byte{2, 24, 0, 0, 1, 0, 0, 0}}
	if err := CheckMessage(errorMessage(req, 0, "")); err != nil {
		t.Errorf("ack: %v", err)
	}
	err := CheckMessage(errorMessage(req, int32(syscall.EEXIST), ""))
	var oe *OpError
	if !errors.Is(err, syscall.EEXIST) || !errors.As(err, &oe) || oe.Sequence != 7 || oe.Message != "" {
		t.Errorf("error: %#v", err)
	}
	err = CheckMessage(errorMessage(req, int32(syscall.EINVAL), "bad thing"))
	if !errors.As(err, &oe) || oe.Message != "bad thing" || oe.Offset != 20 || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("extended ack: %#v", err)
	}
	if want := `netlink receive: invalid argument, offset: 20, message: "bad thing"`; err.Error() != want {
		t.Errorf("text %q, want %q", err, want)
	}
	eintr := -int32(syscall.EINTR)
	done := Message{Header: Header{Type: Done, Flags: Multi}, Data: binary.NativeEndian.AppendUint32(nil, uint32(eintr))}
	if err := CheckMessage(done); !errors.Is(err, syscall.EINTR) {
		t.Errorf("NLMSG_DONE with an errno: %v", err)
	}
	if err := CheckMessage(Message{Header: Header{Type: Error}, Data: []byte{1}}); err == nil {
		t.Errorf("short NLMSG_ERROR: no error")
	}
}

// seedDatagrams are datagrams as the kernel sends them, and broken ones.
func seedDatagrams() [][]byte {
	req := Message{Header: Header{Type: 18, Flags: Request | Dump, Sequence: 3, PID: 77}, Data: make([]byte, 16)}
	ae := NewAttributeEncoder()
	ae.String(3, "lo")
	ae.Uint32(4, 65536)
	ae.Bytes(1, []byte{0, 0, 0, 0, 0, 0})
	ae.Uint8(16, 0)
	attrs, _ := ae.Encode()
	link := Message{Header: Header{Type: 16, Flags: Multi, Sequence: 3, PID: 77}, Data: append(make([]byte, 16), attrs...)}
	done := Message{Header: Header{Type: Done, Flags: Multi, Sequence: 3, PID: 77}, Data: make([]byte, 4)}
	dump := AppendMessage(AppendMessage(AppendMessage(nil, link), link), done)
	unpadded := AppendMessage(nil, Message{Header: Header{Type: 16}, Data: []byte{1, 2, 3, 4, 5}})
	return [][]byte{
		dump,
		AppendMessage(nil, errorMessage(req, 0, "")),
		AppendMessage(nil, errorMessage(req, 17, "")),
		AppendMessage(nil, errorMessage(req, 22, "Invalid ifindex")),
		unpadded[:len(unpadded)-3],
		dump[:len(dump)-7], // cut in the last message
		{},
	}
}

// FuzzParseMessages walks any datagram as the readers do (Next, then
// CheckMessage and the attributes of each message): nothing may panic or
// read out of the datagram, and a message that parses re-encodes
// (AppendMessage) to bytes that parse to the same message.
func FuzzParseMessages(f *testing.F) {
	for _, b := range seedDatagrams() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rest := b
		for len(rest) >= HeaderLen {
			m, r, err := Next(rest)
			if err != nil {
				return
			}
			if len(r) >= len(rest) || int(m.Header.Length) != HeaderLen+len(m.Data) {
				t.Fatalf("Next: %d bytes left of %d, length %d for %d of data", len(r), len(rest), m.Header.Length, len(m.Data))
			}
			rest = r
			_ = CheckMessage(m)
			ad := NewAttributeDecoder(m.Data)
			for n := 0; ad.Next(); n++ {
				if n > len(m.Data)/4 {
					t.Fatal("more attributes than 4-byte words")
				}
				_ = ad.String()
				_ = ad.Uint32()
			}
			again, left, err := Next(AppendMessage(nil, m))
			if err != nil || len(left) != 0 || again.Header != m.Header || !bytes.Equal(again.Data, m.Data) {
				t.Fatalf("round trip: %+v, %d left, %v; want %+v", again, len(left), err, m)
			}
		}
		msgs, err := ParseMessages(b)
		if err == nil && len(rest) >= HeaderLen || len(msgs) > len(b)/HeaderLen {
			t.Fatalf("ParseMessages: %d messages, %v", len(msgs), err)
		}
	})
}

func TestAttributeDecoderErrors(t *testing.T) {
	ae := NewAttributeEncoder()
	ae.Uint16(1, 5)
	b, _ := ae.Encode()
	ad := NewAttributeDecoder(b)
	if !ad.Next() || ad.Uint32() != 0 || ad.Err() == nil {
		t.Errorf("Uint32 of a 2-byte attribute: no error")
	}
	ad = NewAttributeDecoder([]byte{9, 0, 1, 0, 1}) // length 9 past the end
	if ad.Next() || ad.Err() == nil {
		t.Errorf("attribute past the end: no error")
	}
	ad = NewAttributeDecoder([]byte{4, 0, 1 | 0x80, 0x80}) // nested flag
	if !ad.Next() || ad.Type() != 0x81&0x3fff || ad.TypeFlags()&Nested == 0 {
		t.Errorf("type %#x flags %#x", ad.Type(), ad.TypeFlags())
	}
}
