package carp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzAdvert: UnmarshalBinary never panics, and whatever it accepts
// re-encodes to the same bytes and decodes to the same value.
func FuzzAdvert(f *testing.F) {
	f.Add(unhex(f, tv1Frame)[14+20:])
	f.Add(unhex(f, "210700070001c179 aabbccdd00000002 d4c78a59545f7700104b4cb60ec1a8a9adfcb8f1"))
	f.Add([]byte{})
	f.Add(make([]byte, HeaderLen))
	bow, _ := (&Advert{Version: 2, Type: 1, VHID: 9, AuthLen: 7, AdvBase: BowOutAdvBase, AdvSkew: BowOutAdvSkew}).MarshalBinary()
	f.Add(bow)
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Advert
		if err := a.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(out, b) {
			t.Fatalf("re-encode differs:\n got %x\nwant %x", out, b)
		}
		var a2 Advert
		if err := a2.UnmarshalBinary(out); err != nil {
			t.Fatal(err)
		}
		if a2 != a {
			t.Fatalf("round trip: %+v != %+v", a2, a)
		}
	})
}
