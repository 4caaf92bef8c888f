// Package ubus is a pure-Go client for OpenWrt's ubus: no cgo, no libubus.
// It talks ubusd's native protocol on its Unix socket, calls other objects,
// registers objects with methods and serves calls to them, sends and
// listens for events, subscribes and notifies.
//
// The protocol as carpd speaks it is described in docs/ubus-protocol.md
// (derived from openwrt/ubus @3cc98db ubusmsg.h, libubus*.c, ubusd*.c);
// comments cite its sections (docs/ubus-protocol.md#exchanges and so on). The
// message bytes are checked against real captures of ubusd, libubus and the
// ubus CLI in testdata/trace.txt. No maintained Go library can register
// objects, hence this package.
//
// Layout:
//
//	message.go  the 8-byte header, message types, attribute ids;
//	            Message with MarshalBinary/UnmarshalBinary, ReadMessage
//	status.go   status codes and StatusError
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
