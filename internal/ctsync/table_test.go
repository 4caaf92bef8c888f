package ctsync

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

func TestPackFlowRoundTrip(t *testing.T) {
	v6 := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	flows := []flow.Flow{
		tcpFlow(7, flow.TCPEstablished),
		{
			Orig:  flow.Tuple{Src: v6("2001:db8::1"), Dst: v6("2001:db8:1::2"), Proto: flow.ProtoUDP, SrcPort: 5353, DstPort: 53},
			Reply: flow.Tuple{Src: v6("2001:db8:1::2"), Dst: v6("2001:db8:ff::1"), Proto: flow.ProtoUDP, SrcPort: 53, DstPort: 40000},
			Zone:  3, Mark: 0xdeadbeef, Status: flow.StatusAssured | flow.StatusSrcNAT, Timeout: 30,
		},
		{
			Orig:  flow.Tuple{Src: v6("10.0.0.1"), Dst: v6("10.0.0.2"), Proto: flow.ProtoICMP, SrcPort: 9, DstPort: 8 << 8},
			Reply: flow.Tuple{Src: v6("10.0.0.2"), Dst: v6("10.0.0.1"), Proto: flow.ProtoICMP, SrcPort: 9},
		},
	}
	for _, f := range flows {
		c, ok := packFlow(&f)
		if !ok {
			t.Fatalf("packFlow(%v) refused", f.Orig)
		}
		tb := newTable[int]()
		s := tb.insert(&c, 0)
		if got := tb.flow(s); got != f {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, f)
		}
		if got := tb.flowKey(s); got != f.Key() {
			t.Errorf("flowKey %+v, want %+v", got, f.Key())
		}
		if c.key() != keyOf(f.Key()) || tb.key(s) != c.key() {
			t.Errorf("key() and keyOf differ for %v", f.Orig)
		}
		if !tb.sameButTimeout(s, &c) {
			t.Errorf("%v differs from itself", f.Orig)
		}
		g := f
		g.Timeout++
		c2, _ := packFlow(&g)
		g.Mark++
		c3, _ := packFlow(&g)
		if !tb.sameButTimeout(s, &c2) || tb.sameButTimeout(s, &c3) {
			t.Errorf("%v: sameButTimeout wrong", f.Orig)
		}
		tb.set(s, &c3)
		if got := tb.flow(s); got != g {
			t.Errorf("after set:\n got %+v\nwant %+v", got, g)
		}
		tb.remove(s)
		if tb.Len() != 0 || len(tb.v6) != 0 {
			t.Errorf("remove left %d entries, %d IPv6 blocks", tb.Len(), len(tb.v6))
		}
	}
	bad := flows[0]
	bad.Reply.Dst = v6("2001:db8::9")
	if _, ok := packFlow(&bad); ok {
		t.Error("a flow mixing IPv4 and IPv6 was packed")
	}
	bad.Reply.Dst = netip.Addr{}
	if _, ok := packFlow(&bad); ok {
		t.Error("a flow with an invalid address was packed")
	}
}

// tcp6Flow is an IPv6 connection number i (no NAT).
func tcp6Flow(i int) flow.Flow {
	orig := flow.Tuple{Src: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), Dst: netip.MustParseAddr("2001:db8:1::7"),
		Proto: flow.ProtoTCP, SrcPort: uint16(30000 + i), DstPort: 443}
	return flow.Flow{Orig: orig, Reply: orig.Inverse(), TCPState: flow.TCPEstablished, Timeout: 300,
		Status: flow.StatusConfirmed | flow.StatusSeenReply | flow.StatusAssured}
}

// TestTableAgainstMap runs random inserts, removals, unindexes and lookups
// against a map, with the real hash and with one that collides all the
// time (the overflow path).
func TestTableAgainstMap(t *testing.T) {
	for _, collide := range []bool{false, true} {
		t.Run(fmt.Sprintf("collide=%v", collide), func(t *testing.T) {
			tb := newTable[int]()
			if collide {
				tb.hash = func(k ckey) uint64 { return uint64(k.srcPort % 3) }
			}
			rnd := rand.New(rand.NewPCG(7, 9))
			want := map[flow.Key]uint32{} // indexed entries
			held := map[uint32]flow.Key{} // every used slot
			for op := 0; op < 20000; op++ {
				f := tcpFlow(rnd.IntN(300), flow.TCPEstablished)
				key := f.Key()
				c, _ := packFlow(&f)
				slot, ok := tb.lookup(c.key())
				wslot, wok := want[key]
				if ok != wok || (ok && slot != wslot) {
					t.Fatalf("op %d: lookup(%v) = %d,%v; want %d,%v", op, key.Orig, slot, ok, wslot, wok)
				}
				switch r := rnd.IntN(10); {
				case !ok && r < 6:
					s := tb.insert(&c, op)
					if _, dup := held[s]; dup {
						t.Fatalf("op %d: slot %d handed out twice", op, s)
					}
					want[key], held[s] = s, key
				case ok && r < 3:
					tb.remove(slot)
					delete(want, key)
					delete(held, slot)
				case ok && r < 5:
					tb.unindex(slot)
					delete(want, key)
				}
				// Now and then remove an unindexed entry.
				if rnd.IntN(20) == 0 {
					for s := range held {
						if !tb.indexed(s) {
							tb.remove(s)
							delete(held, s)
							break
						}
					}
				}
				if tb.Len() != len(held) {
					t.Fatalf("op %d: Len %d, want %d", op, tb.Len(), len(held))
				}
			}
			n := 0
			tb.each(func(s uint32, e *tentry[int]) bool {
				n++
				if k, ok := held[s]; !ok || tb.flowKey(s) != k {
					t.Errorf("each: slot %d holds %v, want %v (held %v)", s, tb.flowKey(s).Orig, k.Orig, ok)
				}
				return true
			})
			if n != len(held) {
				t.Errorf("each visited %d, want %d", n, len(held))
			}
			if collide && len(tb.over) == 0 {
				t.Error("the colliding hash never used the overflow map")
			}
			n6 := 0
			for _, k := range held {
				if k.Orig.Src.Is6() {
					n6++
				}
			}
			if got := len(tb.v6) - len(tb.v6free); got != n6 {
				t.Errorf("%d IPv6 blocks in use, want %d", got, n6)
			}
		})
	}
}

// BenchmarkTableMemory reports the heap one local and one peer flow cost
// (what makes carpd's RSS with many flows; see bench-sync).
func BenchmarkTableMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		local, peer, ids := newTable[lmeta](), newTable[pmeta](), map[uint64]uint32{}
		for i := range n {
			f := tcpFlow(i, flow.TCPEstablished)
			c, _ := packFlow(&f)
			local.insert(&c, lmeta{id: uint64(i + 1)})
			ids[uint64(i+1)] = peer.insert(&c, pmeta{id: uint64(i + 1)})
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/n, "B/flow-pair")
		runtime.KeepAlive(local)
		runtime.KeepAlive(peer)
		runtime.KeepAlive(ids)
	}
}
