package wire

import "errors"

// Errors callers branch on. A receiver counts each kind separately
// (authentication failures, replays, stale epochs) and drops the datagram;
// everything else that is malformed wraps io.ErrUnexpectedEOF (truncated)
// or one of the unexported sentinels below.
var (
	// ErrAuth: the AEAD tag did not verify. Wrong key, tampered header or
	// ciphertext, or a data frame sealed for an older session of ours.
	ErrAuth = errors.New("wire: authentication failed")
	// ErrReplay: the packet number was already accepted or is older than
	// the replay window.
	ErrReplay = errors.New("wire: replayed or too old packet number")
	// ErrStaleEpoch: the frame belongs to an older session of the peer
	// than the one we have keys for (or to a second session claiming the
	// same epoch). See Session.ForgetPeer.
	ErrStaleEpoch = errors.New("wire: stale peer epoch")
	// ErrUnknownEpoch: a data frame from a peer session we have no keys
	// for yet. The caller should send a HELLO; the peer keeps sending
	// HELLOs until it sees our nonce.
	ErrUnknownEpoch = errors.New("wire: no session for this epoch (HELLO needed)")
	// ErrNoPeer: Seal was called before any HELLO from the peer arrived.
	ErrNoPeer = errors.New("wire: no peer session yet")
	// ErrFrameFull: Encoder.Append would exceed Encoder.Limit; the encoder
	// is unchanged and the record goes into the next frame.
	ErrFrameFull = errors.New("wire: frame full")
	// ErrWeakKey: KeyFromConfig refused the configured key.
	ErrWeakKey = errors.New("wire: weak sync key")
)

// Invalid content. Decoders wrap these with the record index and offset.
var (
	errUnknownRecord = errors.New("unknown record type")
	errReservedBits  = errors.New("reserved bits set")
	errVarint        = errors.New("varint overflows its field")
	errFamilyProto   = errors.New("protocol does not match address family")
	errProto         = errors.New("invalid protocol")
	errTCPState      = errors.New("invalid TCP state")
	errTCPFields     = errors.New("TCP state, window scale or flags on a non-TCP flow")
	errAddrTable     = errors.New("address table index out of range")
	errAddrFamily    = errors.New("address of the wrong family")
	errAddress       = errors.New("invalid address")
	errStatus        = errors.New("invalid extra status bits")
	errWScale        = errors.New("window scale above 15")
	errNameLen       = errors.New("node name too long")
	errAckRanges     = errors.New("invalid SACK ranges")
	errWant          = errors.New("invalid WANT id list")
	errCarp          = errors.New("invalid CARP state list")
	errTimeout       = errors.New("timeout overflows 32 bits")
	errTrailing      = errors.New("trailing bytes after record")
	errMagic         = errors.New("bad magic or version")
	errFrameType     = errors.New("unknown frame type")
	errHello         = errors.New("HELLO frame does not start with a HELLO record")
	errReflected     = errors.New("frame carries our own nonce (reflected)")
	errRecordType    = errors.New("record type not encodable")
)

// ErrConfig: a CONFIG or CONFIG_ACK record does not parse (the receiver
// counts it as a refused configuration record).
var ErrConfig = errors.New("invalid configuration record")
