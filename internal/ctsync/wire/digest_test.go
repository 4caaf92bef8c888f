package wire

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

func TestDigest(t *testing.T) {
	type pair struct {
		id uint64
		k  flow.Key
	}
	var pairs []pair
	for i := range 200 {
		f := masqFlow(i)
		pairs = append(pairs, pair{uint64(i + 1), f.Key()})
	}
	var a, b Digest
	if a.Sum() != ([DigestLen]byte{}) || a.Count() != 0 {
		t.Fatal("zero Digest not empty")
	}
	for _, p := range pairs {
		a.Add(p.id, p.k)
	}
	perm := rand.New(rand.NewPCG(3, 4)).Perm(len(pairs))
	for _, i := range perm {
		b.Add(pairs[i].id, pairs[i].k)
	}
	if a.Sum() != b.Sum() || a.Count() != b.Count() || a.Count() != 200 {
		t.Fatalf("order changed the digest: %x %x", a.Sum(), b.Sum())
	}

	// Remove undoes Add; a pair added twice does not cancel.
	full := a.Sum()
	a.Add(99999, pairs[0].k)
	if a.Sum() == full {
		t.Fatal("Add did not change the digest")
	}
	a.remove(99999, pairs[0].k)
	if a.Sum() != full || a.Count() != 200 {
		t.Fatal("Remove did not undo Add")
	}
	var twice Digest
	twice.Add(1, pairs[0].k)
	twice.Add(1, pairs[0].k)
	if twice.Sum() == ([DigestLen]byte{}) {
		t.Fatal("a pair added twice cancelled out")
	}
	for _, p := range pairs {
		a.remove(p.id, p.k)
	}
	if a.Sum() != ([DigestLen]byte{}) || a.Count() != 0 {
		t.Fatalf("removing everything left %x", a.Sum())
	}
	a.Add(1, pairs[0].k)
	a.reset()
	if a.Sum() != ([DigestLen]byte{}) {
		t.Fatal("Reset")
	}
}

// TestDigestFields: every part of (id, key) matters, including the
// family of otherwise equal-looking addresses.
func TestDigestFields(t *testing.T) {
	f := masqFlow(1)
	base := f.Key()
	variants := map[string]func(k *flow.Key, id *uint64){
		"id":    func(k *flow.Key, id *uint64) { *id++ },
		"zone":  func(k *flow.Key, id *uint64) { k.Zone = 1 },
		"proto": func(k *flow.Key, id *uint64) { k.Orig.Proto = flow.ProtoUDP },
		"src":   func(k *flow.Key, id *uint64) { k.Orig.Src = lan4 },
		"dst":   func(k *flow.Key, id *uint64) { k.Orig.Dst = srv4 },
		"sport": func(k *flow.Key, id *uint64) { k.Orig.SrcPort++ },
		"dport": func(k *flow.Key, id *uint64) { k.Orig.DstPort++ },
		"4in6": func(k *flow.Key, id *uint64) {
			k.Orig.Src = netip.AddrFrom16(k.Orig.Src.As16())
			k.Orig.Dst = netip.AddrFrom16(k.Orig.Dst.As16())
		},
	}
	var ref Digest
	ref.Add(7, base)
	seen := map[[DigestLen]byte]string{ref.Sum(): "base"}
	for name, fn := range variants {
		k, id := base, uint64(7)
		fn(&k, &id)
		var d Digest
		d.Add(id, k)
		if other, dup := seen[d.Sum()]; dup {
			t.Errorf("%s: same digest as %s", name, other)
		}
		seen[d.Sum()] = name
	}
}
