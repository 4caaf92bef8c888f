// Package ubus is a pure-Go client for OpenWrt's ubus: no cgo, no libubus.
// It talks ubusd's native protocol on its Unix socket, calls other objects,
// registers objects with methods and serves calls to them, sends and
// listens for events, subscribes and notifies.
//
// The protocol follows shared/specs/openwrt.md §1 (derived from
// openwrt/ubus @3cc98db ubusmsg.h, libubus*.c, ubusd*.c); section references
// in comments (§1.7 and so on) are to that document. The message bytes are
// checked against real captures of ubusd, libubus and the ubus CLI in
// testdata/trace.txt. No maintained Go library can register objects (§1.8),
// hence this package.
//
// Layout:
//
//	message.go  the 8-byte header, message types, attribute ids (§1.2–1.4);
//	            Message with MarshalBinary/UnmarshalBinary, ReadMessage
//	status.go   status codes and StatusError (§1.5)
//	conn.go     Conn: HELLO, the reader goroutine, requests, LOOKUP, INVOKE
//	object.go   ADD_OBJECT with a signature, serving INVOKE, NOTIFY
//	event.go    sending and listening for events, subscriptions
//	client.go   Client: reconnect with backoff, setup on each connection
//
// The blob/blobmsg codec lives in package blob, and ubustest holds a fake
// ubusd for tests.
//
// Leniency, as libubus: handlers get every argument sent (rpcd adds
// "ubus_rpc_session"; ignore what you do not know), integers arrive in any
// width, and attribute order does not matter on receipt.
package ubus
