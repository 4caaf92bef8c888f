package ubus

import "errors"

// Errors callers branch on.
var (
	// ErrNotConnected is returned by Client methods while there is no
	// connection to ubusd; the Client keeps reconnecting in the background.
	ErrNotConnected = errors.New("ubus: not connected")
)

// Errors for malformed messages; they are wrapped with context, and
// truncation wraps io.ErrUnexpectedEOF instead. A Conn that reads one closes
// the connection (the stream can no longer be trusted).
var (
	// errVersion: the header version is not 0.
	errVersion = errors.New("unsupported version")
	// errBody: the message blob is not one attribute with id 0, or its
	// length disagrees with the message.
	errBody = errors.New("invalid message blob")
	// errTooLong: the message blob exceeds UBUS_MAX_MSGLEN.
	errTooLong = errors.New("message too long")
	// errBadAttr: a known attribute has the wrong payload size, or a
	// string is not NUL-terminated.
	errBadAttr = errors.New("invalid attribute")
	// errReply: a reply lacks an attribute it must carry.
	errReply = errors.New("malformed reply")
	// errHello: the first message from ubusd is not HELLO.
	errHello = errors.New("no HELLO from ubusd")
)
