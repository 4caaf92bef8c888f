// Package blob implements libubox's blob and blobmsg TLV encodings, the
// payload format of every ubus message.
//
// The wire format is described in docs/ubus-protocol.md#blob-and-blobmsg,
// derived from openwrt/libubox @1aa36ee (blob.h, blob.c, blobmsg.h, blobmsg.c,
// blobmsg_json.c). The package is a pure codec: no sockets, no clock, no
// logging, no globals. Every decoder returns an error on malformed input and
// never panics.
//
// Two layers, each with an encoder with a sticky error in the style of
// mdlayher/netlink's AttributeEncoder; blobmsg also has a mirroring iterator:
//
//	attr.go     plain blob attributes (id, length, extended bit, 4-byte
//	            alignment): Attr, SplitAttr, ParseAttrs, AttrEncoder. ubus message
//	            attributes (OBJID, METHOD, DATA…) are plain attributes.
//	blobmsg.go  blobmsg attributes (extended bit set, id = Type, a name
//	            header): Type, Decoder.
//	encoder.go  Encoder for blobmsg tables and arrays.
//	json.go     FromJSON/ToJSON mirroring blobmsg_json, and Marshal/Unmarshal
//	            for Go values via encoding/json.
//
// All multi-byte fields are big-endian on the wire regardless of the host.
package blob
