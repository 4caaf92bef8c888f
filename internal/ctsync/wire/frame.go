package wire

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// Frame sizes and offsets (doc.go, "Frames"; docs/sync-protocol.md#frames).
const (
	// Magic is the first byte of every frame: 0xC (carpd sync) in the high
	// nibble, format version 1 in the low one.
	Magic = 0xC1
	// HeaderLen is the cleartext header of a data frame.
	HeaderLen = 14
	// HelloHeaderLen is the cleartext header of a HELLO frame: the data
	// header and the sender's session nonce.
	HelloHeaderLen = HeaderLen + NonceLen
	// TagLen is the Poly1305 tag after the ciphertext.
	TagLen = chacha20poly1305.Overhead
	// Overhead is what a data frame adds to its record stream; UDP/IPv4
	// adds another 28 bytes.
	Overhead = HeaderLen + TagLen
	// KeyLen is the size of the pre-shared key.
	KeyLen = chacha20poly1305.KeySize

	offMagic = 0
	offType  = 1 // flags (high nibble, zero) | frame type (low nibble)
	offEpoch = 2
	offPN    = 6
	offNonce = 14 // HELLO only
)

// FrameType is the low nibble of a frame's second byte.
type FrameType uint8

const (
	// FrameData carries records sealed with the session's data key.
	FrameData FrameType = 1
	// FrameHello starts or refreshes a session; it is sealed with a key
	// derived from the pre-shared key and the nonce in its header.
	FrameHello FrameType = 2
)

func (t FrameType) String() string {
	switch t {
	case FrameData:
		return "DATA"
	case FrameHello:
		return "HELLO"
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// Header is the cleartext header of a frame, authenticated as associated
// data.
type Header struct {
	Type FrameType
	// Epoch is the sender's session epoch.
	Epoch uint32
	// PN is the sender's packet number; unique per sender session.
	PN uint64
	// Nonce is the sender's session nonce, in HELLO frames only.
	Nonce [NonceLen]byte
}

var (
	_ encoding.BinaryMarshaler   = (*Header)(nil)
	_ encoding.BinaryAppender    = (*Header)(nil)
	_ encoding.BinaryUnmarshaler = (*Header)(nil)
)

// Len is the encoded size of h.
func (h *Header) Len() int {
	if h.Type == FrameHello {
		return HelloHeaderLen
	}
	return HeaderLen
}

// MarshalBinary encodes h.
func (h *Header) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, h.Len()))
}

// AppendBinary appends the encoding of h to b.
//
//	byte 0       Magic (0xC1)
//	byte 1       0000 TTTT   flags (reserved, zero), frame type
//	bytes 2-5    epoch, big endian
//	bytes 6-13   packet number, big endian
//	bytes 14-29  sender nonce (HELLO only)
func (h *Header) AppendBinary(b []byte) ([]byte, error) {
	if h.Type != FrameData && h.Type != FrameHello {
		return b, fmt.Errorf("wire: header: %w %d", errFrameType, h.Type)
	}
	b = append(b, Magic, byte(h.Type))
	b = binary.BigEndian.AppendUint32(b, h.Epoch)
	b = binary.BigEndian.AppendUint64(b, h.PN)
	if h.Type == FrameHello {
		b = append(b, h.Nonce[:]...)
	}
	return b, nil
}

// UnmarshalBinary decodes a header that is exactly b.
func (h *Header) UnmarshalBinary(b []byte) error {
	n, err := h.parse(b)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("wire: header: %w", errTrailing)
	}
	return nil
}

// ParseHeader decodes the header at the start of frame and returns it with
// its length.
func ParseHeader(frame []byte) (Header, int, error) {
	var h Header
	n, err := h.parse(frame)
	return h, n, err
}

func (h *Header) parse(b []byte) (int, error) {
	if len(b) < HeaderLen {
		return 0, fmt.Errorf("wire: header: %w", io.ErrUnexpectedEOF)
	}
	if b[offMagic] != Magic {
		return 0, fmt.Errorf("wire: header: %w %#02x", errMagic, b[offMagic])
	}
	if b[offType]>>4 != 0 {
		return 0, fmt.Errorf("wire: header: flags: %w", errReservedBits)
	}
	*h = Header{
		Type:  FrameType(b[offType]),
		Epoch: binary.BigEndian.Uint32(b[offEpoch:]),
		PN:    binary.BigEndian.Uint64(b[offPN:]),
	}
	switch h.Type {
	case FrameData:
		return HeaderLen, nil
	case FrameHello:
		if len(b) < HelloHeaderLen {
			return 0, fmt.Errorf("wire: header: %w", io.ErrUnexpectedEOF)
		}
		h.Nonce = [NonceLen]byte(b[offNonce:HelloHeaderLen])
		return HelloHeaderLen, nil
	}
	return 0, fmt.Errorf("wire: header: %w %d", errFrameType, h.Type)
}

// aeadNonce is epoch ‖ packet number: unique for every frame a sender
// session seals, and each key belongs to one sender session.
func aeadNonce(epoch uint32, pn uint64) [chacha20poly1305.NonceSize]byte {
	var n [chacha20poly1305.NonceSize]byte
	binary.BigEndian.PutUint32(n[:], epoch)
	binary.BigEndian.PutUint64(n[4:], pn)
	return n
}

// nonceLocked fills s.nbuf (which, unlike a local array, does not escape
// to the heap through the cipher.AEAD interface on every frame).
func (s *Session) nonceLocked(epoch uint32, pn uint64) []byte {
	s.nbuf = aeadNonce(epoch, pn)
	return s.nbuf[:]
}

// HKDF labels (docs/sync-protocol.md#keys-and-nonces). Every key is HKDF-SHA256 of the pre-shared key.
const (
	labelHello = "carpd ctsync v1 hello"
	labelData  = "carpd ctsync v1 data"
)

// helloAEAD: salt = the sender's nonce, so a receiver can verify a HELLO
// with the pre-shared key alone.
func helloAEAD(psk *[KeyLen]byte, nonce [NonceLen]byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, psk[:], nonce[:], labelHello, KeyLen)
	if err != nil {
		return nil, err
	}
	return chacha20poly1305.New(k)
}

// dataAEAD: the key for frames from one session to another. salt = sender
// nonce ‖ receiver nonce, info = label ‖ sender epoch ‖ receiver epoch, so
// each direction and each pair of sessions has its own key.
func dataAEAD(psk *[KeyLen]byte, fromEpoch uint32, from [NonceLen]byte, toEpoch uint32, to [NonceLen]byte) (cipher.AEAD, error) {
	salt := make([]byte, 0, 2*NonceLen)
	salt = append(append(salt, from[:]...), to[:]...)
	info := make([]byte, 0, len(labelData)+8)
	info = append(info, labelData...)
	info = binary.BigEndian.AppendUint32(info, fromEpoch)
	info = binary.BigEndian.AppendUint32(info, toEpoch)
	k, err := hkdf.Key(sha256.New, psk[:], salt, string(info), KeyLen)
	if err != nil {
		return nil, err
	}
	return chacha20poly1305.New(k)
}

// SessionConfig is what a node brings to a session.
type SessionConfig struct {
	// Key is the pre-shared key (KeyFromConfig).
	Key [KeyLen]byte
	// Epoch should grow from one run to the next (for example the Unix
	// time at start): the peer rejects a HELLO with a smaller epoch than
	// the one it holds, which is what keeps old sessions from being
	// replayed. When the clock went back, the peer's ErrStaleEpoch
	// (authenticated) and ForgetPeer, once the held session is silent,
	// let the new run in.
	Epoch uint32
	// Nonce must be fresh random bytes for every run (crypto/rand).
	Nonce [NonceLen]byte
	// Name is sent in HELLO records, for the peer's logs.
	Name string
}

// Session holds the keys and the replay window of one node's side of the
// sync link: it seals our frames and opens the peer's.
//
// Handshake (docs/sync-protocol.md#handshake). Each run of a node has an epoch E and a random nonce
// N. HELLO frames carry E and N in the cleartext header and are sealed with
// HKDF(PSK, salt=N, "hello"), so the receiver needs only the PSK; their
// HELLO record echoes the (E, N) the sender last saw from the receiver.
// Data frames are sealed with HKDF(PSK, salt=N_sender‖N_receiver,
// "data"‖E_sender‖E_receiver): a new run of either side means new keys.
//
//	state        event                                      next state
//	NoPeer       a HELLO(E, N) authenticates                Unconfirmed: keys derived, NewPeer
//	Unconfirmed  a HELLO echoing our (E, N), or a data      Established
//	             frame that opens with the data key
//	(any peer)   a HELLO with a higher epoch (the peer      Unconfirmed: new keys, NewPeer
//	             restarted)
//	(any peer)   a HELLO with a lower epoch, or the same    unchanged: ErrStaleEpoch
//	             epoch and another nonce, that authenticates  (ErrAuth if it does not)
//	(any)        ForgetPeer                                 NoPeer
//
// The caller sends a HELLO frame while not Established (say every second)
// and in answer to a HELLO that has WantHello set, and holds back data
// until Established: the peer cannot open data until it has our nonce.
// A HELLO with a smaller epoch than the held one, or the same epoch with
// another nonce, is ErrStaleEpoch if it authenticates (ErrAuth if not); a data frame with a larger epoch is
// ErrUnknownEpoch (we missed the peer's HELLO: send ours). Every accepted
// frame, HELLO or data, goes through the replay window of the peer session.
// Frames sealed for a previous run of ours fail with ErrAuth.
//
// A Session is safe for concurrent use. It does no I/O and reads no clock.
type Session struct {
	key   [KeyLen]byte
	epoch uint32
	nonce [NonceLen]byte
	name  string
	hello cipher.AEAD // seals our HELLO frames

	mu      sync.Mutex
	pn      uint64                           // guarded by mu: next packet number
	peer    *peerState                       // guarded by mu: nil until the first HELLO
	retired *peerState                       // guarded by mu: the session ForgetPeer dropped
	nbuf    [chacha20poly1305.NonceSize]byte // guarded by mu: AEAD nonce scratch
	// superseded: nonces of peer runs replaced by a newer run (the peer
	// restarted), refused forever, even after ForgetPeer; a ring of the
	// last maxSuperseded. Guarded by mu.
	superseded  [maxSuperseded][NonceLen]byte
	nsuperseded int
}

// maxSuperseded bounds the peer runs a Session remembers as dead.
const maxSuperseded = 16

// peerState is one session of the peer; replaced when the peer restarts.
type peerState struct {
	epoch     uint32
	nonce     [NonceLen]byte
	name      string
	hello     cipher.AEAD // opens its HELLO frames
	tx, rx    cipher.AEAD // seals our data frames to it, opens its data frames
	window    ReplayWindow
	confirmed bool // it has shown it knows our nonce
}

// NewSession starts our side of a session.
func NewSession(c SessionConfig) (*Session, error) {
	if c.Nonce == ([NonceLen]byte{}) {
		return nil, fmt.Errorf("wire: session nonce is zero")
	}
	if len(c.Name) > MaxNameLen {
		return nil, fmt.Errorf("wire: node name: %w", errNameLen)
	}
	s := &Session{key: c.Key, epoch: c.Epoch, nonce: c.Nonce, name: c.Name}
	var err error
	if s.hello, err = helloAEAD(&s.key, s.nonce); err != nil {
		return nil, fmt.Errorf("wire: %w", err)
	}
	return s, nil
}

// Established reports whether data can flow both ways: we have the peer's
// nonce and it has shown it has ours.
func (s *Session) Established() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peer != nil && s.peer.confirmed
}

// Peer returns the peer session we hold keys for.
func (s *Session) Peer() (epoch uint32, nonce [NonceLen]byte, name string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peer == nil {
		return 0, nonce, "", false
	}
	return s.peer.epoch, s.peer.nonce, s.peer.name, true
}

// ForgetPeer drops the peer session, so that a HELLO with any epoch is
// accepted again. Call it when the peer has been silent for long (its
// clock may have gone back across a restart). The dropped session's replay
// window is kept in case that session shows up again, and runs of the peer
// that a newer run replaced (the last 16) stay refused; an older run than
// that, replayed after ForgetPeer, would be taken as the peer.
func (s *Session) ForgetPeer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peer != nil {
		s.retired = s.peer
	}
	s.peer = nil
}

// SealHello appends a HELLO frame to dst: a HELLO record from the session
// state followed by the record stream extra (e.g. BULK_REQ, ACK), which
// must have been encoded as a stream of its own.
func (s *Session) SealHello(dst, extra []byte) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := Record{Type: RecordHello, Hello: Hello{Name: s.name}}
	if p := s.peer; p != nil {
		rec.Hello.PeerEpoch, rec.Hello.PeerNonce = p.epoch, p.nonce
	}
	h := Header{Type: FrameHello, Epoch: s.epoch, PN: s.pn, Nonce: s.nonce}
	start := len(dst)
	dst, _ = h.AppendBinary(dst)
	ptStart := len(dst)
	dst, err := rec.AppendBinary(dst)
	if err != nil {
		return dst[:start], 0, err
	}
	dst = append(dst, extra...)
	s.pn++
	// Sealed in place: the plaintext is where the ciphertext goes.
	return s.hello.Seal(dst[:ptStart], s.nonceLocked(h.Epoch, h.PN), dst[ptStart:], dst[start:ptStart]), h.PN, nil
}

// Seal appends a data frame carrying the record stream payload to dst and
// returns it with the frame's packet number. payload must not overlap
// dst's spare capacity.
func (s *Session) Seal(dst, payload []byte) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peer
	if p == nil {
		return dst, 0, ErrNoPeer
	}
	h := Header{Type: FrameData, Epoch: s.epoch, PN: s.pn}
	s.pn++
	start := len(dst)
	dst, _ = h.AppendBinary(dst)
	return p.tx.Seal(dst, s.nonceLocked(h.Epoch, h.PN), payload, dst[start:]), h.PN, nil
}

// Opened is a frame that authenticated and passed the replay check.
type Opened struct {
	Header Header
	// Payload is the decrypted record stream, appended to the dst passed
	// to Open. For a HELLO frame it starts with the HELLO record.
	Payload []byte
	// NewPeer: we held no session with the sender of this HELLO before it
	// (first contact, a restart of the peer, or after ForgetPeer): keys may
	// have changed and the peer may know nothing of our table (resync,
	// clear the resend queue).
	NewPeer bool
	// WantHello: this HELLO does not echo our current epoch and nonce, so
	// its sender cannot open our data frames: answer with a HELLO.
	WantHello bool
}

// Open authenticates and decrypts frame, appending the plaintext to dst.
// Errors: ErrAuth, ErrReplay, ErrStaleEpoch, ErrUnknownEpoch, or a
// malformed frame (io.ErrUnexpectedEOF, bad magic, unknown type); in every
// case the session is unchanged.
func (s *Session) Open(dst, frame []byte) (Opened, error) {
	h, n, err := ParseHeader(frame)
	if err != nil {
		return Opened{}, err
	}
	if len(frame)-n < TagLen {
		return Opened{}, fmt.Errorf("wire: frame: %w", io.ErrUnexpectedEOF)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.Type == FrameHello {
		return s.openHelloLocked(dst, h, frame[:n], frame[n:])
	}
	p := s.peer
	switch {
	case p == nil || h.Epoch > p.epoch:
		return Opened{}, ErrUnknownEpoch
	case h.Epoch < p.epoch:
		return Opened{}, ErrStaleEpoch
	case !p.window.Check(h.PN):
		return Opened{}, ErrReplay
	}
	pt, err := p.rx.Open(dst, s.nonceLocked(h.Epoch, h.PN), frame[n:], frame[:n])
	if err != nil {
		return Opened{}, ErrAuth
	}
	p.window.Accept(h.PN)
	p.confirmed = true
	return Opened{Header: h, Payload: pt[len(dst):]}, nil
}

func (s *Session) isSupersededLocked(n [NonceLen]byte) bool {
	for i := range min(s.nsuperseded, maxSuperseded) {
		if s.superseded[i] == n {
			return true
		}
	}
	return false
}

func (s *Session) supersedeLocked(n [NonceLen]byte) {
	s.superseded[s.nsuperseded%maxSuperseded] = n
	s.nsuperseded++
}

// staleHelloLocked is the error for a HELLO of a session we refuse:
// ErrStaleEpoch if it authenticates, so that the caller knows a holder of
// the key is there (a peer whose clock went back, or that restarted twice
// within a second, and may be let in with ForgetPeer once the session we
// hold has gone silent), ErrAuth otherwise.
func (s *Session) staleHelloLocked(h Header, hdr, ct []byte) error {
	aead, err := helloAEAD(&s.key, h.Nonce)
	if err != nil {
		return fmt.Errorf("wire: %w", err)
	}
	if _, err := aead.Open(nil, s.nonceLocked(h.Epoch, h.PN), ct, hdr); err != nil {
		return ErrAuth
	}
	return ErrStaleEpoch
}

func (s *Session) openHelloLocked(dst []byte, h Header, hdr, ct []byte) (Opened, error) {
	if h.Nonce == s.nonce {
		return Opened{}, fmt.Errorf("wire: HELLO: %w", errReflected)
	}
	p := s.peer
	same := p != nil && p.nonce == h.Nonce && p.epoch == h.Epoch
	switch {
	case same:
	case s.isSupersededLocked(h.Nonce):
		return Opened{}, s.staleHelloLocked(h, hdr, ct)
	case p == nil && s.retired != nil && s.retired.nonce == h.Nonce && s.retired.epoch == h.Epoch:
		// The session ForgetPeer dropped: reuse its window so its old
		// frames stay replay-protected. Adopted only once it authenticates.
		p, same = s.retired, true
	case p != nil && h.Epoch <= p.epoch:
		return Opened{}, s.staleHelloLocked(h, hdr, ct)
	}
	newPeer := !same || s.peer == nil
	if same && !p.window.Check(h.PN) {
		return Opened{}, ErrReplay
	}
	var aead cipher.AEAD
	if same {
		aead = p.hello
	} else {
		var err error
		if aead, err = helloAEAD(&s.key, h.Nonce); err != nil {
			return Opened{}, fmt.Errorf("wire: %w", err)
		}
	}
	pt, err := aead.Open(dst, s.nonceLocked(h.Epoch, h.PN), ct, hdr)
	if err != nil {
		return Opened{}, ErrAuth
	}
	payload := pt[len(dst):]
	var d Decoder
	d.Reset(payload)
	if !d.Next() || d.rec.Type != RecordHello {
		if err := d.Err(); err != nil {
			return Opened{}, fmt.Errorf("wire: HELLO: %w", err)
		}
		return Opened{}, fmt.Errorf("wire: %w", errHello)
	}
	hello := &d.rec.Hello
	if !same {
		np := &peerState{epoch: h.Epoch, nonce: h.Nonce, hello: aead}
		if np.tx, err = dataAEAD(&s.key, s.epoch, s.nonce, h.Epoch, h.Nonce); err != nil {
			return Opened{}, fmt.Errorf("wire: %w", err)
		}
		if np.rx, err = dataAEAD(&s.key, h.Epoch, h.Nonce, s.epoch, s.nonce); err != nil {
			return Opened{}, fmt.Errorf("wire: %w", err)
		}
		p = np
	}
	if !same {
		// Whatever run of the peer we knew is dead now.
		if s.peer != nil {
			s.supersedeLocked(s.peer.nonce)
		}
		if s.retired != nil {
			s.supersedeLocked(s.retired.nonce)
		}
	}
	s.peer = p
	s.retired = nil
	p.window.Accept(h.PN)
	p.name = hello.Name
	// Monotonic within a peer session: the peer cannot forget our nonce
	// without restarting, which makes a new session.
	echoed := hello.PeerNonce == s.nonce && hello.PeerEpoch == s.epoch
	if echoed {
		p.confirmed = true
	}
	return Opened{Header: h, Payload: payload, NewPeer: newPeer, WantHello: !echoed}, nil
}
