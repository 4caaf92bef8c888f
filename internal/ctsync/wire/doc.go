// Package wire is the codec of carpd's state-sync link: the compact record
// stream that carries conntrack flows (flow.Flow), the AEAD frames around
// it, the session handshake and keys, the replay window, and the table
// digest that ends a bulk transfer. It is pure: no sockets, no clock, no
// logging. docs/sync-protocol.md describes the protocol; its design draws on
// OpenBSD pfsync (typed messages batched in frames) and conntrackd's FTFW
// (acknowledged sequence numbers, lost state resent as it is now).
//
// Layout:
//
//	record.go   Record and its types; Encoder, DecodeRecords
//	encode.go   Encoder: record stream of one frame
//	decode.go   Decoder: sticky-error iterator over a record stream
//	frame.go    Header, Session: handshake, keys, Seal, Open
//	replay.go   ReplayWindow
//	key.go      KeyFromConfig
//	digest.go   Digest for BULK_END
//
// # Frames
//
// A frame is one UDP datagram:
//
//	+------+------+-------------+---------------------+~~~~~~~~~~~~~~~+==============+-----------+
//	| 0xC1 | 0 T  | epoch (u32) | packet number (u64) | nonce (HELLO) | records (enc)| tag (16)  |
//	+------+------+-------------+---------------------+~~~~~~~~~~~~~~~+==============+-----------+
//	 0      1      2             6                     14              14 or 30
//
// Byte 0 is Magic (high nibble 0xC, format version 1); byte 1 holds four
// reserved flag bits (zero; room for a "compressed payload" bit, see
// docs/sync-protocol.md#link-budget,
// which this version does not use) and the frame type T (1 DATA, 2 HELLO). A
// HELLO frame adds the sender's 16-byte session nonce. The header is the
// associated data of ChaCha20-Poly1305; the AEAD nonce is epoch ‖ packet
// number. A data frame costs Overhead = 30 bytes plus 28 for IPv4/UDP.
// Session documents the handshake and the keys.
//
// # Records
//
// The plaintext of a frame is a record stream: records back to back, no
// length prefixes, as long as the frame. A frame is decodable on its own:
// the only context is per frame, and both sides reset it for each frame.
//
//   - id context: data records carry the flow id as a zigzag varint delta
//     against the id of the previous data record in the frame (0 at the
//     start), or as a flag meaning "previous + 1";
//   - address table: a NAT address sent inline is appended to the frame's
//     table (while it has fewer than MaxAddrTable entries), and later
//     records refer to it by index, so a masquerade address costs 4 bytes
//     once per frame and then nothing.
//
// All multi-byte integers are big endian; "uvarint" is encoding/binary's
// unsigned varint. The top three bits of a record's first byte are its
// kind; the low five bits are flags of that kind:
//
//	000 TTTTT  control: T = 0 PING, 1 HELLO, 2 BULK_REQ, 3 BULK_START,
//	                    4 BULK_END, 5 ACK, 6 WANT, 16 CARP, 18 CONFIG,
//	                    19 CONFIG_ACK; 16-31 are
//	                    extensions (a body length first; unknown ones skipped)
//	001 FFFVX  NEW
//	010 IVCXT  UPD
//	011 DDDDD  DEL
//	100 IUU00  REFRESH
//	101..111   invalid
//
// NEW carries a whole flow:
//
//	byte    001 FFF V X     FFF family/proto: 0 TCP, 1 UDP, 2 ICMP, 3 proto
//	                        byte follows; +4 for IPv6 (6 is ICMPv6).
//	                        V: version present. X: extension byte present.
//	uvarint id              zigzag delta
//	uvarint version         if V
//	byte    SSSS R A UU     state byte: TCP state (0 for non-TCP),
//	                        SEEN_REPLY, ASSURED, timeout unit (0 none,
//	                        1 second, 2 minute, 3 hour)
//	byte    DD d SS s C X   NAT byte: DD reply destination address (the
//	                        SNAT address), d its port follows; SS reply
//	                        source address (the DNAT address), s its port
//	                        follows; C CONFIRMED; X extra status follows.
//	                        Address codes: 0 same as the original tuple,
//	                        1 inline, 2 table entry 0, 3 index byte follows
//	byte    00 o f F W M z  extension, if X in the first byte: zone (z),
//	                        mark, window scales, TCP flags per direction (F),
//	                        the same flags both ways (f), or the
//	                        originator's only, the reply's being zero (o)
//	byte    protocol        if FFF&3 == 3
//	4|16    original source address
//	4|16    original destination address
//	2       original source port
//	2       original destination port
//	4|16|1  reply destination address   if DD is 1 (inline) or 3 (index)
//	2       reply destination port      if d
//	4|16|1  reply source address        if SS is 1 or 3
//	2       reply source port           if s
//	uvarint extra status                if X (NAT byte)
//	uvarint timeout in its unit         if UU != 0
//	uvarint zone, uvarint mark          if z, M (extension)
//	byte    wscale orig<<4 | reply      if W
//	2|1     TCP flags orig, reply       if F (2 bytes), f or o (1 byte)
//
// A reply port is compared with the port the reply would have without NAT:
// the swapped original ports, or for ICMP the same echo id and the reply
// type (echo request 8 -> echo reply 0; ICMPv6 128 -> 129). Status: the
// flag bits give SEEN_REPLY, ASSURED and CONFIRMED. The other bits are
// predicted: SRC_NAT (DST_NAT) when the reply destination (source) differs
// from the default, and SRC_NAT_DONE|DST_NAT_DONE always (the kernel sets
// both on every flow once a NAT table exists). The extra status varint is
// the other bits XOR the prediction, packed (bit 0 stays, bits 4-31 move to
// 1-28), so the raw status the kernel reports costs nothing on a NAT router.
// The timeout is exact: the encoder picks the coarsest unit that divides it
// (432000 s is "120 hours", 1 byte).
//
// A masqueraded IPv4 TCP flow is 17 bytes: kind, id, state, NAT, 12 bytes
// of tuple, timeout (plus the 4-byte WAN address once per frame).
//
// UPD carries the whole mutable state (not a delta, so it is idempotent):
//
//	byte    010 I V C X T   I: id = previous + 1 (no id field); V version
//	                        present; C CONFIRMED; X extra status follows;
//	                        T TCP options follow
//	uvarint id              if not I
//	uvarint version         if V
//	byte    SSSS R A UU     state byte, as in NEW
//	uvarint extra status    if X: bits other than SEEN_REPLY, ASSURED,
//	                        CONFIRMED, packed as in NEW; SRC_NAT, DST_NAT
//	                        and the NAT_DONE bits are fixed at NEW and
//	                        never sent
//	uvarint timeout         if UU != 0
//	byte    wscale orig<<4 | reply      if T
//	2       TCP flags orig, reply       if T
//
// No T means the window scales and flags are unchanged (Record).
//
// DEL is one byte when the id is 1 to 31 above the previous one:
//
//	byte    011 DDDDD       D: id = previous + D; D = 0: uvarint zigzag delta follows
//
// REFRESH extends a flow's lifetime:
//
//	byte    100 I UU 00     I: id = previous + 1; UU timeout unit
//	uvarint id              if not I
//	uvarint timeout         if UU != 0
//
// Control records (the id context ignores them):
//
//	PING        000 00000
//	HELLO       000 00001, peer epoch (4), peer nonce (16), name length
//	            (1, at most MaxNameLen), name
//	BULK_REQ    000 00010, uvarint seq
//	BULK_START  000 00011, uvarint seq
//	BULK_END    000 00100, uvarint seq, uvarint count, digest (16)
//	ACK         000 00101, uvarint cum, uvarint n (at most MaxAckRanges),
//	            n × (uvarint gap, uvarint length): the first range starts at
//	            cum + 1 + gap, every later one at previous last + 2 + gap,
//	            and ends length packet numbers later
//	WANT        000 00110, uvarint n (1 to MaxWant), uvarint first id,
//	            n-1 × uvarint (id - previous id - 1): the receiver's flows
//	            the sender lacks, to be sent again whole (anti-entropy)
//	CARP        000 10000, uvarint body length, body: byte n (1 to
//	            MaxCarpStates), n × (byte name length (1 to 15), interface
//	            name ('!' to '~'), byte vhid (1 to 255), byte state (0 INIT,
//	            1 BACKUP, 2 MASTER)); bytes after the n states within the
//	            body are skipped (room for later fields)
//	LEASE       000 10001, uvarint body length (at most 297), body: byte
//	            flags (bits 0-1 op: 0 add, 1 renew, 2 release; bit 2 the
//	            client id is 01 and the hardware address; 3-7 zero), expiry
//	            (4, Unix time, 0 never), IPv4 address (4), byte hardware
//	            type, byte length and hardware address (at most 20), byte
//	            length and host name (at most 100, [A-Za-z0-9._-]), byte
//	            length and client id (at most 140); bytes after them within
//	            the body are skipped
//	CONFIG      000 10010, uvarint body length, body: byte flags (1 a
//	            file, 2 forced), byte name length (1 to 255), name ('!'
//	            to '~'), 32-byte SHA-256 of the whole object, uvarint
//	            total (at most 256 KiB), uvarint offset, data (the rest
//	            of the body; offset + its length at most total)
//	CONFIG_ACK  000 10011, uvarint body length, body: byte status, byte
//	            reason, byte name length, name, the 32-byte hash it
//	            answers, the 32-byte hash of the receiver's own copy;
//	            bytes after them within the body are skipped
//	20-31       an extension this version does not know: uvarint body
//	            length, body; skipped, the records after it decoded
//
// The decoder refuses what the encoder never writes where accepting it
// would make a record ambiguous: reserved bits, TCP state or TCP options on
// a non-TCP flow, ICMP with IPv6 (ICMPv6 with IPv4), protocol 0, states
// above TCPSynSent2, table references past the table or to an address of
// the other family, out-of-range varints, extra status that is zero or
// (UPD) holds NAT bits, too many SACK ranges, ranges that overlap or
// overflow. Semantic checks (unspecified or multicast addresses, NAT to
// addresses the router does not own) belong to the sink: flow.Flow.Valid.
package wire
