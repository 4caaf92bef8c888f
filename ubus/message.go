package ubus

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/carpd/carpd/ubus/blob"
)

// The message header, from openwrt/ubus ubusmsg.h
// (docs/ubus-protocol.md#message-header):
//
//	#define UBUS_MAX_MSGLEN	1048576
//
//	struct ubus_msghdr {
//		uint8_t version;
//		uint8_t type;
//		uint16_t seq;
//		uint32_t peer;
//	} __packetdata;
//
// A message is the header followed by one blob attribute with id 0 (the
// message blob) whose payload is a sequence of plain ubus attributes:
//
//	0               1               2               3
//	+---------------+---------------+-------------------------------+
//	| version (0)   | type          | seq (be16)                    |
//	+---------------+---------------+-------------------------------+
//	| peer (be32)                                                   |
//	+-+-------------+-----------------------------------------------+
//	|0| id 0        | blob length (4 + attributes)                  |
//	+-+-------------+-----------------------------------------------+
//	| attributes (OBJID, METHOD, DATA, ...), each padded to 4 bytes |
//	+---------------------------------------------------------------+
const (
	// HeaderLen is sizeof(struct ubus_msghdr).
	HeaderLen = 8
	// MinMessageLen is a header and an empty message blob: what a reader
	// needs before it knows the length.
	MinMessageLen = HeaderLen + blob.HeaderLen
	// MaxBlobLen is UBUS_MAX_MSGLEN: ubusd disconnects a client whose
	// message blob is longer.
	MaxBlobLen = 1 << 20

	offVersion = 0
	offType    = 1
	offSeq     = 2
	offPeer    = 4

	// version is the only header version ubusd accepts.
	version = 0
)

// MsgType is enum ubus_msg_type (docs/ubus-protocol.md#message-types).
type MsgType uint8

// Message types.
const (
	MsgHello        MsgType = iota // ubusd → client after accept; peer = client id
	MsgStatus                      // final reply to a request
	MsgData                        // data reply, zero or more before STATUS
	MsgPing                        // echoed back as DATA + STATUS
	MsgLookup                      // resolve object paths
	MsgInvoke                      // method call; also event and notify delivery
	MsgAddObject                   // register an object
	MsgRemoveObject                // unregister an object
	MsgSubscribe                   // subscribe an object to a target
	MsgUnsubscribe                 // unsubscribe; also ubusd → client when the target goes
	MsgNotify                      // publish to subscribers; ubusd → owner on presence change
	MsgMonitor                     // traffic mirror for `ubus monitor`
)

var msgTypeNames = [...]string{
	MsgHello:        "HELLO",
	MsgStatus:       "STATUS",
	MsgData:         "DATA",
	MsgPing:         "PING",
	MsgLookup:       "LOOKUP",
	MsgInvoke:       "INVOKE",
	MsgAddObject:    "ADD_OBJECT",
	MsgRemoveObject: "REMOVE_OBJECT",
	MsgSubscribe:    "SUBSCRIBE",
	MsgUnsubscribe:  "UNSUBSCRIBE",
	MsgNotify:       "NOTIFY",
	MsgMonitor:      "MONITOR",
}

// String returns the ubus_msg_type name without its prefix.
func (t MsgType) String() string {
	if int(t) < len(msgTypeNames) {
		return msgTypeNames[t]
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// Attribute ids of the message blob, enum ubus_msg_attr
// (docs/ubus-protocol.md#message-attributes). They are plain blob attributes
// (extended bit clear).
const (
	AttrUnspec      = 0
	AttrStatus      = 1  // int32
	AttrObjPath     = 2  // string
	AttrObjID       = 3  // int32 (unsigned id)
	AttrMethod      = 4  // string
	AttrObjType     = 5  // int32
	AttrSignature   = 6  // nested: one blobmsg TABLE per method
	AttrData        = 7  // nested: blobmsg table members
	AttrTarget      = 8  // int32 object id
	AttrActive      = 9  // int8
	AttrNoReply     = 10 // int8
	AttrSubscribers = 11 // nested: int32 attributes
	AttrUser        = 12 // string
	AttrGroup       = 13 // string
)

// Well-known object ids (ubusmsg.h UBUS_SYSTEM_OBJECT_*). ubusd hands out
// random ids from 1024 up for clients, objects and object types.
const (
	ObjectEvent   = 1 // the event object: methods "send" and "register"
	ObjectACL     = 2
	ObjectMonitor = 3
)

// attrKind is the payload type ubusd's ubus_policy gives each known
// attribute; UnmarshalBinary enforces it.
var attrKind = map[uint8]int{
	AttrStatus:  4,
	AttrObjPath: kindString,
	AttrObjID:   4,
	AttrMethod:  kindString,
	AttrObjType: 4,
	AttrTarget:  4,
	AttrActive:  1,
	AttrNoReply: 1,
	AttrUser:    kindString,
	AttrGroup:   kindString,
}

// kindString marks a NUL-terminated string payload in attrKind.
const kindString = -1

// Message is one ubus message: header fields and the attributes of the
// message blob, in wire order. Attribute order does not matter to ubusd or
// libubus, but keeping it makes decode → encode reproduce the bytes exactly.
type Message struct {
	Type MsgType
	// Seq matches replies to requests; the requester picks it.
	Seq uint16
	// Peer is the client or object id the message is about
	// (docs/ubus-protocol.md#message-header).
	Peer uint32
	// Attrs are the ubus attributes, all plain (not extended).
	Attrs []blob.Attr
}

var (
	_ encoding.BinaryMarshaler   = Message{}
	_ encoding.BinaryAppender    = Message{}
	_ encoding.BinaryUnmarshaler = &Message{}
)

// MarshalBinary encodes the message as sent on the socket.
func (m Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(nil)
}

// AppendBinary appends the encoded message to b.
func (m Message) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, version, byte(m.Type), 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(b[start+offSeq:], m.Seq)
	binary.BigEndian.PutUint32(b[start+offPeer:], m.Peer)
	e := blob.NewAttrEncoder()
	e.Nested(AttrUnspec, func(e *blob.AttrEncoder) error {
		for _, a := range m.Attrs {
			e.Attr(a)
		}
		return nil
	})
	body, err := e.Encode()
	if err != nil {
		return b[:start], fmt.Errorf("ubus: encode %v: %w", m.Type, err)
	}
	if len(body) > MaxBlobLen {
		return b[:start], fmt.Errorf("ubus: encode %v: blob of %d bytes: %w", m.Type, len(body), errTooLong)
	}
	return append(b, body...), nil
}

// UnmarshalBinary decodes one complete message: b must hold exactly the
// header and the message blob. It checks the version, the blob framing, and
// the payload size of every known attribute (ubusd's ubus_policy); unknown
// attribute ids are kept as they are. Attribute payloads are copied, so b may
// be reused.
func (m *Message) UnmarshalBinary(b []byte) error { return m.unmarshal(b, false) }

// unmarshal is UnmarshalBinary; owned says b is not reused by the caller, so
// attributes may alias it (ReadMessage allocates a fresh buffer per message).
func (m *Message) unmarshal(b []byte, owned bool) error {
	if len(b) < MinMessageLen {
		return fmt.Errorf("ubus: message of %d bytes: %w", len(b), io.ErrUnexpectedEOF)
	}
	if b[offVersion] != version {
		return fmt.Errorf("ubus: version %d: %w", b[offVersion], errVersion)
	}
	idLen := binary.BigEndian.Uint32(b[HeaderLen:])
	n := int(idLen & blob.MaxLen)
	switch {
	case idLen&^blob.MaxLen != 0: // id 0, extended bit clear
		return fmt.Errorf("ubus: message blob header %#08x: %w", idLen, errBody)
	case n < blob.HeaderLen:
		return fmt.Errorf("ubus: message blob length %d: %w", n, errBody)
	case n > MaxBlobLen:
		return fmt.Errorf("ubus: blob of %d bytes: %w", n, errTooLong)
	case HeaderLen+n > len(b):
		return fmt.Errorf("ubus: message blob of %d bytes, have %d: %w", n, len(b)-HeaderLen, io.ErrUnexpectedEOF)
	case HeaderLen+n < len(b):
		return fmt.Errorf("ubus: %d bytes after the message blob: %w", len(b)-HeaderLen-n, errBody)
	}
	data := b[MinMessageLen:]
	if !owned {
		data = append([]byte(nil), data...)
	}
	attrs, err := blob.ParseAttrs(data)
	if err != nil {
		return fmt.Errorf("ubus: %w", err)
	}
	for _, a := range attrs {
		if err := checkAttr(a); err != nil {
			return err
		}
	}
	*m = Message{
		Type:  MsgType(b[offType]),
		Seq:   binary.BigEndian.Uint16(b[offSeq:]),
		Peer:  binary.BigEndian.Uint32(b[offPeer:]),
		Attrs: attrs,
	}
	return nil
}

// checkAttr validates a known attribute against its policy.
func checkAttr(a blob.Attr) error {
	if a.Extended {
		return fmt.Errorf("ubus: attribute %d is extended: %w", a.ID, errBadAttr)
	}
	kind, ok := attrKind[a.ID]
	switch {
	case !ok:
		return nil
	case kind == kindString:
		if len(a.Data) == 0 || a.Data[len(a.Data)-1] != 0 {
			return fmt.Errorf("ubus: attribute %d: string not NUL-terminated: %w", a.ID, errBadAttr)
		}
	case len(a.Data) != kind:
		return fmt.Errorf("ubus: attribute %d: %d bytes, want %d: %w", a.ID, len(a.Data), kind, errBadAttr)
	}
	return nil
}

// ReadMessage reads one message from r the way libubus and ubusd do: the
// header and the message blob's header first (MinMessageLen bytes), then the
// rest of the blob. A blob longer than MaxBlobLen is refused before reading it.
func ReadMessage(r io.Reader) (Message, error) {
	var hdr [MinMessageLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Message{}, err
	}
	if hdr[offVersion] != version {
		return Message{}, fmt.Errorf("ubus: version %d: %w", hdr[offVersion], errVersion)
	}
	n := int(binary.BigEndian.Uint32(hdr[HeaderLen:]) & blob.MaxLen)
	if n < blob.HeaderLen {
		return Message{}, fmt.Errorf("ubus: message blob length %d: %w", n, errBody)
	}
	if n > MaxBlobLen {
		return Message{}, fmt.Errorf("ubus: blob of %d bytes: %w", n, errTooLong)
	}
	buf := make([]byte, HeaderLen+n)
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[MinMessageLen:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Message{}, err
	}
	var m Message
	if err := m.unmarshal(buf, true); err != nil {
		return Message{}, err
	}
	return m, nil
}

// Attr returns the last attribute with the given id ("a repeated id keeps
// the last one", docs/ubus-protocol.md#message-attributes).
func (m *Message) Attr(id uint8) (blob.Attr, bool) {
	for i := len(m.Attrs) - 1; i >= 0; i-- {
		if m.Attrs[i].ID == id {
			return m.Attrs[i], true
		}
	}
	return blob.Attr{}, false
}

// Uint32 returns a 4-byte attribute (STATUS, OBJID, OBJTYPE, TARGET).
func (m *Message) Uint32(id uint8) (uint32, bool) {
	a, ok := m.Attr(id)
	if !ok || len(a.Data) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(a.Data), true
}

// Uint8 returns a 1-byte attribute (ACTIVE, NO_REPLY).
func (m *Message) Uint8(id uint8) (uint8, bool) {
	a, ok := m.Attr(id)
	if !ok || len(a.Data) != 1 {
		return 0, false
	}
	return a.Data[0], true
}

// String returns a string attribute (OBJPATH, METHOD, USER, GROUP).
func (m *Message) String(id uint8) (string, bool) {
	a, ok := m.Attr(id)
	if !ok {
		return "", false
	}
	if len(a.Data) == 0 || a.Data[len(a.Data)-1] != 0 {
		return "", false
	}
	return string(a.Data[:bytes.IndexByte(a.Data, 0)]), true
}

// Status returns the STATUS attribute.
func (m *Message) Status() (Status, bool) {
	v, ok := m.Uint32(AttrStatus)
	return Status(v), ok
}

// Attribute constructors for building messages.

// Uint32Attr is blob_put_int32.
func Uint32Attr(id uint8, v uint32) blob.Attr {
	return blob.Attr{ID: id, Data: binary.BigEndian.AppendUint32(nil, v)}
}

// Uint8Attr is blob_put_int8.
func Uint8Attr(id, v uint8) blob.Attr { return blob.Attr{ID: id, Data: []byte{v}} }

// StringAttr is blob_put_string.
func StringAttr(id uint8, s string) blob.Attr {
	return blob.Attr{ID: id, Data: append([]byte(s), 0)}
}

// DataAttr wraps encoded blobmsg members (from blob.FromJSON or a
// blob.Encoder) as a DATA attribute. nil gives the empty DATA 07 00 00 04.
func DataAttr(members []byte) blob.Attr { return blob.Attr{ID: AttrData, Data: members} }
