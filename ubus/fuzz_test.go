package ubus

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzMessage: Message.UnmarshalBinary and ReadMessage never panic and agree;
// what they accept re-encodes to the same length (only padding bytes may
// change, to zero) and decodes to the same Message; the re-encoding is a
// fixed point. Seeds: every message of the real traces.
func FuzzMessage(f *testing.F) {
	for _, m := range TraceMessages(f) {
		f.Add(m.Bytes)
	}
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4})             // bare HELLO body
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4})             // version 1
	f.Add([]byte{0, 2, 0, 1, 0, 0, 0, 0, 0x80, 0, 0, 4})          // extended message blob
	f.Add([]byte{0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 8, 3, 0, 0, 5}) // truncated attribute
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		err := m.UnmarshalBinary(b)
		rm, rerr := ReadMessage(bytes.NewReader(b))
		if err != nil {
			// ReadMessage reads a prefix and may accept what follows
			// garbage; it must not accept a message UnmarshalBinary
			// rejects when b is exactly one message.
			if rerr == nil && rmLen(rm) == len(b) {
				t.Fatalf("ReadMessage accepted what UnmarshalBinary rejected: %v", err)
			}
			return
		}
		if rerr != nil {
			t.Fatalf("UnmarshalBinary accepted what ReadMessage rejected: %v", rerr)
		}
		if diff := cmp.Diff(m, rm); diff != "" {
			t.Fatalf("ReadMessage differs (-unmarshal +read):\n%s", diff)
		}
		out, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(b) {
			t.Fatalf("re-encoded to %d bytes, was %d", len(out), len(b))
		}
		var m2 Message
		if err := m2.UnmarshalBinary(out); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, m2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		out2, err := m2.MarshalBinary()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("re-encoding is not a fixed point: %v", err)
		}
	})
}

// rmLen is the encoded length of a decoded message.
func rmLen(m Message) int {
	b, err := m.MarshalBinary()
	if err != nil {
		return -1
	}
	return len(b)
}
