package wire

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
)

var testKey = [KeyLen]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

func newSession(t testing.TB, key [KeyLen]byte, epoch uint32, nonceByte byte, name string) *Session {
	t.Helper()
	s, err := NewSession(SessionConfig{Key: key, Epoch: epoch, Nonce: [NonceLen]byte{0: nonceByte, 15: nonceByte}, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hello seals a HELLO on from and opens it on to.
func hello(t testing.TB, from, to *Session) Opened {
	t.Helper()
	f, _, err := from.SealHello(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := to.Open(nil, f)
	if err != nil {
		t.Fatalf("Open(HELLO): %v", err)
	}
	return o
}

// handshake runs HELLO a->b, b->a, a->b and checks both ends are up.
func handshake(t testing.TB, a, b *Session) {
	t.Helper()
	if o := hello(t, a, b); !o.NewPeer || !o.WantHello {
		t.Fatalf("first HELLO: %+v", o)
	}
	if b.Established() {
		t.Fatal("b established before a knew its nonce")
	}
	if o := hello(t, b, a); !o.NewPeer || o.WantHello {
		t.Fatalf("answer: %+v", o)
	}
	if !a.Established() {
		t.Fatal("a not established after b echoed its nonce")
	}
	if o := hello(t, a, b); o.NewPeer || o.WantHello {
		t.Fatalf("third HELLO: %+v", o)
	}
	if !b.Established() {
		t.Fatal("b not established")
	}
}

func seal(t testing.TB, s *Session, payload []byte) []byte {
	t.Helper()
	f, _, err := s.Seal(nil, payload)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestHandshakeAndData(t *testing.T) {
	a := newSession(t, testKey, 100, 0xa, "router-a")
	b := newSession(t, testKey, 200, 0xb, "router-b")
	if _, _, err := a.Seal(nil, []byte{0}); !errors.Is(err, ErrNoPeer) {
		t.Fatalf("Seal before HELLO: %v", err)
	}
	o := hello(t, a, b)
	if o.Header.Type != FrameHello || o.Header.Epoch != 100 || o.Header.Nonce != [NonceLen]byte{0: 0xa, 15: 0xa} {
		t.Fatalf("header %+v", o.Header)
	}
	var d Decoder
	d.Reset(o.Payload)
	if !d.Next() || d.Record().Type != RecordHello || d.Record().Hello.Name != "router-a" || d.Record().Hello.PeerEpoch != 0 {
		t.Fatalf("HELLO payload %x: %+v %v", o.Payload, d.Record(), d.Err())
	}
	hello(t, b, a)
	hello(t, a, b)
	if !a.Established() || !b.Established() {
		t.Fatal("not established")
	}
	if ep, n, name, ok := a.Peer(); !ok || ep != 200 || n[0] != 0xb || name != "router-b" {
		t.Fatalf("a.Peer() = %d %x %q %v", ep, n, name, ok)
	}

	payload := mustAppend(t, []Record{{Type: RecordNew, ID: 1, Flow: masqFlow(1)}, {Type: RecordPing}})
	for i := range 3 {
		buf := make([]byte, 0, 1500)
		f, pn, err := a.Seal(buf, payload)
		if err != nil {
			t.Fatal(err)
		}
		if len(f) != len(payload)+Overhead {
			t.Fatalf("frame %d bytes for %d payload", len(f), len(payload))
		}
		if &f[0] != &buf[:1][0] {
			t.Error("Seal allocated although dst had room")
		}
		out, err := b.Open(make([]byte, 0, 1500), f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Payload, payload) || out.Header.PN != pn || out.Header.Type != FrameData || out.NewPeer {
			t.Fatalf("frame %d: %+v", i, out)
		}
		// And the other way.
		f = seal(t, b, payload)
		if out, err = a.Open(nil, f); err != nil || !bytes.Equal(out.Payload, payload) {
			t.Fatalf("b->a: %v", err)
		}
	}
}

// TestHelloExtra: records after the HELLO record ride along.
func TestHelloExtra(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	b := newSession(t, testKey, 2, 2, "")
	extra := mustAppend(t, []Record{{Type: RecordBulkReq, Bulk: Bulk{Seq: 9}}, {Type: RecordDelete, ID: 1}})
	f, _, err := a.SealHello([]byte("prefix"), extra)
	if err != nil {
		t.Fatal(err)
	}
	o, err := b.Open(nil, f[len("prefix"):])
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeAll(o.Payload)
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{{Type: RecordHello}, {Type: RecordBulkReq, Bulk: Bulk{Seq: 9}}, {Type: RecordDelete, ID: 1}}
	if d := diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func TestWrongKey(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	other := testKey
	other[31] ^= 1
	b := newSession(t, other, 2, 2, "")
	f, _, _ := a.SealHello(nil, nil)
	if _, err := b.Open(nil, f); !errors.Is(err, ErrAuth) {
		t.Fatalf("HELLO with the wrong key: %v", err)
	}
	if _, _, _, ok := b.Peer(); ok {
		t.Fatal("a failed HELLO created a peer")
	}
	// A data frame sealed for another session (c) does not open on e,
	// although e knows a: the data key includes the receiver's nonce.
	c := newSession(t, testKey, 2, 2, "")
	handshake(t, a, c)
	e := newSession(t, testKey, 3, 3, "")
	hello(t, a, e)
	if _, err := e.Open(nil, seal(t, a, []byte{0})); !errors.Is(err, ErrAuth) {
		t.Fatalf("data for another session: %v", err)
	}
}

func TestTampering(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	b := newSession(t, testKey, 2, 2, "")
	handshake(t, a, b)
	payload := mustAppend(t, []Record{{Type: RecordDelete, ID: 5}})
	f := seal(t, a, payload)
	for i := range f {
		for _, bit := range []byte{0x01, 0x80} {
			g := bytes.Clone(f)
			g[i] ^= bit
			_, err := b.Open(nil, g)
			if err == nil {
				t.Fatalf("flip of byte %d bit %#x accepted", i, bit)
			}
			switch {
			case i >= offPN: // packet number, ciphertext, tag
				if !errors.Is(err, ErrAuth) {
					t.Errorf("byte %d: err %v, want ErrAuth", i, err)
				}
			case i >= offEpoch:
				if !errors.Is(err, ErrStaleEpoch) && !errors.Is(err, ErrUnknownEpoch) {
					t.Errorf("epoch byte %d: err %v", i, err)
				}
			}
		}
	}
	// The untouched frame still opens: nothing above changed the session.
	if _, err := b.Open(nil, f); err != nil {
		t.Fatalf("original after tampered copies: %v", err)
	}
	// Tampered HELLO: a flipped nonce byte derives another key.
	h, _, _ := a.SealHello(nil, nil)
	c := newSession(t, testKey, 3, 3, "")
	for i := offPN; i < len(h); i++ {
		g := bytes.Clone(h)
		g[i] ^= 4
		if _, err := c.Open(nil, g); !errors.Is(err, ErrAuth) {
			t.Errorf("HELLO byte %d: err %v, want ErrAuth", i, err)
		}
	}
	if _, _, _, ok := c.Peer(); ok {
		t.Fatal("tampered HELLOs created a peer")
	}
}

func TestMalformedFrames(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	b := newSession(t, testKey, 2, 2, "")
	handshake(t, a, b)
	f := seal(t, a, []byte{0})
	h, _, _ := a.SealHello(nil, nil)
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"short header", f[:HeaderLen-1], io.ErrUnexpectedEOF},
		{"no tag", f[:HeaderLen+TagLen-1], io.ErrUnexpectedEOF},
		{"hello short nonce", h[:HelloHeaderLen-1], io.ErrUnexpectedEOF},
		{"hello no tag", h[:HelloHeaderLen+TagLen-1], io.ErrUnexpectedEOF},
		{"truncated data", f[:len(f)-1], ErrAuth},
		{"bad magic", append([]byte{0xC2}, f[1:]...), errMagic},
		{"flags", append([]byte{Magic, 0x11}, f[2:]...), errReservedBits},
		{"type 0", append([]byte{Magic, 0}, f[2:]...), errFrameType},
		{"type 3", append([]byte{Magic, 3}, f[2:]...), errFrameType},
	}
	for _, c := range cases {
		if _, err := b.Open(nil, c.frame); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

// TestHelloWithoutHelloRecord: a HELLO frame must start with a HELLO
// record, even when it authenticates.
func TestHelloWithoutHelloRecord(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	b := newSession(t, testKey, 2, 2, "")
	for _, pt := range [][]byte{{}, {0x00}, {0x61}, {0xff}} {
		h := Header{Type: FrameHello, Epoch: 1, PN: 0, Nonce: a.nonce}
		frame, _ := h.AppendBinary(nil)
		n := aeadNonce(h.Epoch, h.PN)
		frame = a.hello.Seal(frame, n[:], pt, frame)
		if _, err := b.Open(nil, frame); err == nil || errors.Is(err, ErrAuth) {
			t.Errorf("payload %x: err %v", pt, err)
		}
	}
	if _, _, _, ok := b.Peer(); ok {
		t.Fatal("bad HELLO created a peer")
	}
}

func TestReflectedHello(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	f, _, _ := a.SealHello(nil, nil)
	if _, err := a.Open(nil, f); !errors.Is(err, errReflected) {
		t.Fatalf("own HELLO: %v", err)
	}
	b := newSession(t, testKey, 2, 2, "")
	handshake(t, a, b)
	// Our own data frame reflected: the directions have different keys.
	if _, err := a.Open(nil, seal(t, a, []byte{0})); err == nil {
		t.Fatal("own data frame accepted")
	}
}

func TestReplay(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	b := newSession(t, testKey, 2, 2, "")
	handshake(t, a, b)
	const n = ReplayWindowSize + 200
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = seal(t, a, []byte{byte(i)})
	}
	open := func(i int) error { _, err := b.Open(nil, frames[i]); return err }

	// In order, then duplicate.
	if err := open(0); err != nil {
		t.Fatal(err)
	}
	if err := open(0); !errors.Is(err, ErrReplay) {
		t.Fatalf("duplicate: %v", err)
	}
	// Out of order inside the window: 10 first, then 5..9, each once.
	if err := open(10); err != nil {
		t.Fatal(err)
	}
	for i := 9; i >= 5; i-- {
		if err := open(i); err != nil {
			t.Fatalf("frame %d out of order: %v", i, err)
		}
		if err := open(i); !errors.Is(err, ErrReplay) {
			t.Fatalf("frame %d twice: %v", i, err)
		}
	}
	// Jump ahead past the window: 1..4 are now too old, 11 too.
	if err := open(n - 1); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 4, 11} {
		if err := open(i); !errors.Is(err, ErrReplay) {
			t.Fatalf("frame %d behind the window: %v", i, err)
		}
	}
	// Just inside the window is still fine, once.
	in := n - ReplayWindowSize + 5
	if err := open(in); err != nil {
		t.Fatalf("frame %d inside the window: %v", in, err)
	}
	if err := open(in); !errors.Is(err, ErrReplay) {
		t.Fatal("inside-window duplicate accepted")
	}
	// A replayed HELLO is a replay too.
	h, _, _ := a.SealHello(nil, nil)
	if _, err := b.Open(nil, h); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(nil, h); !errors.Is(err, ErrReplay) {
		t.Fatalf("HELLO twice: %v", err)
	}
}

// TestPeerRestart: a new run of the peer (higher epoch, new nonce) gets new
// keys; the old run's frames are refused, whichever way they come.
func TestPeerRestart(t *testing.T) {
	a := newSession(t, testKey, 100, 1, "a")
	b := newSession(t, testKey, 500, 2, "b")
	handshake(t, a, b)
	oldData := seal(t, a, []byte{1})
	oldHello, _, _ := a.SealHello(nil, nil)
	bToOldA := seal(t, b, []byte{2})

	a2 := newSession(t, testKey, 101, 3, "a")
	if _, _, err := a2.Seal(nil, []byte{0}); !errors.Is(err, ErrNoPeer) {
		t.Fatalf("fresh run sealing: %v", err)
	}
	// b's frames for the old run mean nothing to the new one.
	if _, err := a2.Open(nil, bToOldA); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("old-session data on the new run: %v", err)
	}
	// a2's data cannot reach b before its HELLO does... it cannot even be
	// sealed. Its HELLO makes b rekey.
	if o := hello(t, a2, b); !o.NewPeer {
		t.Fatal("restart not reported as NewPeer")
	}
	if b.Established() {
		t.Fatal("b established with a2 before a2 saw b's nonce")
	}
	if _, err := b.Open(nil, oldData); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("old-epoch data after restart: %v", err)
	}
	if _, err := b.Open(nil, oldHello); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("old-epoch HELLO after restart: %v", err)
	}
	hello(t, b, a2)
	hello(t, a2, b)
	if !a2.Established() || !b.Established() {
		t.Fatal("not re-established")
	}
	// b's old frame (same b epoch, old keys) fails authentication.
	if _, err := a2.Open(nil, bToOldA); !errors.Is(err, ErrAuth) {
		t.Fatalf("frame for the old run: %v", err)
	}
	if _, err := b.Open(nil, seal(t, a2, []byte{7})); err != nil {
		t.Fatal(err)
	}

	// A run claiming the same epoch with another nonce, or a lower epoch:
	// refused until ForgetPeer.
	same := newSession(t, testKey, 101, 4, "")
	f, _, _ := same.SealHello(nil, nil)
	if _, err := b.Open(nil, f); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("same epoch, other nonce: %v", err)
	}
	back := newSession(t, testKey, 50, 5, "")
	f, _, _ = back.SealHello(nil, nil)
	if _, err := b.Open(nil, f); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("lower epoch: %v", err)
	}
	b.ForgetPeer()
	if b.Established() {
		t.Fatal("established after ForgetPeer")
	}
	if _, err := b.Open(nil, seal(t, a2, []byte{8})); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("data after ForgetPeer: %v", err)
	}
	// A run that a newer one replaced stays dead, even now.
	if _, err := b.Open(nil, oldHello); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("superseded run after ForgetPeer: %v", err)
	}
	if o, err := b.Open(nil, f); err != nil || !o.NewPeer {
		t.Fatalf("lower epoch after ForgetPeer: %v %+v", err, o)
	}
	// a2, dropped by ForgetPeer and then replaced by back, is dead too.
	a2Hello, _, _ := a2.SealHello(nil, nil)
	if _, err := b.Open(nil, a2Hello); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("replaced run: %v", err)
	}
}

// TestForgetPeerKeepsWindow: after ForgetPeer, the same peer session's old
// frames stay replay-protected when it comes back.
func TestForgetPeerKeepsWindow(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	b := newSession(t, testKey, 2, 2, "")
	handshake(t, a, b)
	data := seal(t, a, []byte{1})
	if _, err := b.Open(nil, data); err != nil {
		t.Fatal(err)
	}
	oldHello, _, _ := a.SealHello(nil, nil)
	if _, err := b.Open(nil, oldHello); err != nil {
		t.Fatal(err)
	}
	b.ForgetPeer()
	if _, err := b.Open(nil, oldHello); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed HELLO after ForgetPeer: %v", err)
	}
	if o := hello(t, a, b); !o.NewPeer {
		t.Fatal("comeback after ForgetPeer not reported")
	}
	if _, err := b.Open(nil, data); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed data after ForgetPeer: %v", err)
	}
	if !b.Established() {
		t.Fatal("readopted session lost its confirmation")
	}
}

// TestForgetPeerRecovery: after ForgetPeer on one side only, the other
// side learns from WantHello that it must say HELLO again.
func TestForgetPeerRecovery(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	b := newSession(t, testKey, 2, 2, "")
	handshake(t, a, b)
	b.ForgetPeer()
	if _, err := b.Open(nil, seal(t, a, []byte{1})); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("data after ForgetPeer: %v", err)
	}
	if o := hello(t, b, a); !o.WantHello || o.NewPeer {
		t.Fatalf("HELLO from the forgetful side: %+v", o)
	}
	if o := hello(t, a, b); !o.NewPeer {
		t.Fatalf("answer: %+v", o)
	}
	if !b.Established() || !a.Established() {
		t.Fatal("not re-established")
	}
	if _, err := b.Open(nil, seal(t, a, []byte{2})); err != nil {
		t.Fatal(err)
	}
}

// TestBothRestart: handshake survives both sides restarting in turn, and
// HELLOs lost in between.
func TestBothRestart(t *testing.T) {
	a := newSession(t, testKey, 10, 1, "")
	b := newSession(t, testKey, 20, 2, "")
	handshake(t, a, b)
	b = newSession(t, testKey, 21, 3, "")
	a.SealHello(nil, nil) // lost
	hello(t, b, a)        // a learns b's new run
	if a.Established() {
		t.Fatal("a established with a b that does not know it")
	}
	hello(t, a, b)
	hello(t, b, a)
	if !a.Established() || !b.Established() {
		t.Fatal("not established after b's restart")
	}
}

func TestNewSessionErrors(t *testing.T) {
	if _, err := NewSession(SessionConfig{Key: testKey}); err == nil {
		t.Error("zero nonce accepted")
	}
	if _, err := NewSession(SessionConfig{Key: testKey, Nonce: [NonceLen]byte{1}, Name: string(make([]byte, MaxNameLen+1))}); !errors.Is(err, errNameLen) {
		t.Errorf("long name: %v", err)
	}
}

func TestHeaderCodec(t *testing.T) {
	for _, h := range []Header{
		{Type: FrameData, Epoch: 0xdeadbeef, PN: 0x0102030405060708},
		{Type: FrameHello, Epoch: 1, PN: 1<<64 - 1, Nonce: [NonceLen]byte{9, 15: 9}},
	} {
		b, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != h.Len() {
			t.Fatalf("%d bytes, Len %d", len(b), h.Len())
		}
		var got Header
		if err := got.UnmarshalBinary(b); err != nil || got != h {
			t.Fatalf("round trip: %+v %v", got, err)
		}
		if err := got.UnmarshalBinary(append(b, 0)); !errors.Is(err, errTrailing) {
			t.Fatalf("trailing byte: %v", err)
		}
	}
	if _, err := (&Header{Type: 7}).MarshalBinary(); !errors.Is(err, errFrameType) {
		t.Fatalf("type 7: %v", err)
	}
	if FrameHello.String() != "HELLO" || FrameType(9).String() != "FrameType(9)" {
		t.Error("FrameType.String")
	}
}

// TestConcurrentSession exercises the lock under -race: two goroutines
// seal, two open, while HELLOs go back and forth.
func TestConcurrentSession(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	b := newSession(t, testKey, 2, 2, "")
	handshake(t, a, b)
	frames := make(chan []byte, 64)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				var f []byte
				var err error
				if i%50 == 0 {
					f, _, err = a.SealHello(nil, nil)
				} else {
					f, _, err = a.Seal(nil, []byte{byte(i)})
				}
				if err != nil {
					errs <- err
					return
				}
				frames <- f
			}
		}()
	}
	var rx sync.WaitGroup
	for range 2 {
		rx.Add(1)
		go func() {
			defer rx.Done()
			for f := range frames {
				if _, err := b.Open(nil, f); err != nil {
					errs <- err
					return
				}
				b.Established()
			}
		}()
	}
	wg.Wait()
	close(frames)
	rx.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestStaleHelloAuthenticated: a HELLO of a refused session is
// ErrStaleEpoch only from a holder of the key; a forged one (another key,
// or a genuine header with another ciphertext) is ErrAuth, so the refusal
// tells the caller the peer is there, which nobody without the key can
// fake.
func TestStaleHelloAuthenticated(t *testing.T) {
	a := newSession(t, testKey, 100, 1, "a")
	b := newSession(t, testKey, 500, 2, "b")
	handshake(t, a, b)
	other := testKey
	other[0] ^= 1
	forged := newSession(t, other, 50, 3, "")
	f, _, _ := forged.SealHello(nil, nil)
	if _, err := b.Open(nil, f); !errors.Is(err, ErrAuth) {
		t.Fatalf("stale HELLO under another key: %v, want ErrAuth", err)
	}
	back := newSession(t, testKey, 50, 4, "")
	g, _, _ := back.SealHello(nil, nil)
	tampered := append([]byte(nil), g...)
	tampered[len(tampered)-1] ^= 1
	if _, err := b.Open(nil, tampered); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered stale HELLO: %v, want ErrAuth", err)
	}
	if _, err := b.Open(nil, g); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("genuine stale HELLO: %v, want ErrStaleEpoch", err)
	}
}
