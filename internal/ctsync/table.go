package ctsync

import (
	"hash/maphash"
	"net/netip"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// The flow tables hold a hundred thousand flows on a router with little
// RAM, so they are compact: a flow.Flow is 136 bytes with four netip.Addr
// of 24 bytes (and pointers the GC must scan), a map keyed by flow.Key
// spends 64 bytes of key per slot. Here a flow is a cflow of 48 bytes
// (IPv4 addresses inline, IPv6 ones in a side array), kept with its
// bookkeeping in chunks of a slab; the index maps a 64-bit hash of the
// key to the slot (16 bytes per map slot), and the rare keys whose hash
// collides with another's go to a small overflow map.

// cflow is a flow.Flow, compact and free of pointers (the collector
// never scans the tables). Both directions have the same protocol and
// address family (flow.Valid, and the kernel, guarantee it).
type cflow struct {
	v4 [4][4]byte // orig src, orig dst, reply src, reply dst (IPv4)
	// v6 is 1 + the index of the four addresses in the table's side array
	// for IPv6, 0 for IPv4.
	v6      uint32
	ports   [4]uint16 // orig src, orig dst, reply src, reply dst
	mark    uint32
	status  uint32
	timeout uint32
	zone    uint16
	proto   uint8
	tcp     [5]uint8 // state, window scale orig/reply, flags orig/reply
}

// packed is a flow packed for a table: a cflow whose IPv6 addresses, if
// any, are still beside it (is6), to be stored by insert or set.
type packed struct {
	c   cflow
	is6 bool
	a6  [4][16]byte
}

// packFlow compacts f; ok is false for a flow that mixes address families
// or has an invalid address (neither the kernel nor flow.Valid lets one
// through).
func packFlow(f *flow.Flow) (p packed, ok bool) {
	addrs := [4]netip.Addr{f.Orig.Src, f.Orig.Dst, f.Reply.Src, f.Reply.Dst}
	is4 := addrs[0].Is4()
	for _, a := range addrs {
		if !a.IsValid() || a.Is4() != is4 || a.Zone() != "" {
			return packed{}, false
		}
	}
	c := &p.c
	if is4 {
		for i, a := range addrs {
			c.v4[i] = a.As4()
		}
	} else {
		p.is6 = true
		for i, a := range addrs {
			p.a6[i] = a.As16()
		}
	}
	c.ports = [4]uint16{f.Orig.SrcPort, f.Orig.DstPort, f.Reply.SrcPort, f.Reply.DstPort}
	c.mark, c.status, c.timeout, c.zone, c.proto = f.Mark, f.Status, f.Timeout, f.Zone, f.Orig.Proto
	c.tcp = [5]uint8{f.TCPState, f.TCPWScaleOrig, f.TCPWScaleReply, f.TCPFlagsOrig, f.TCPFlagsReply}
	return p, true
}

func (p *packed) key() ckey {
	if p.is6 {
		return p.c.keyWith(&p.a6)
	}
	return p.c.keyWith(nil)
}

// keyWith is c's key; a6 holds its addresses if it is IPv6.
func (c *cflow) keyWith(a6 *[4][16]byte) ckey {
	k := ckey{srcPort: c.ports[0], dstPort: c.ports[1], zone: c.zone, proto: c.proto}
	if a6 != nil {
		k.src, k.dst, k.v6 = a6[0], a6[1], true
	} else {
		copy(k.src[:], c.v4[0][:])
		copy(k.dst[:], c.v4[1][:])
	}
	return k
}

// flowWith expands c; a6 holds its addresses if it is IPv6.
func (c *cflow) flowWith(a6 *[4][16]byte) flow.Flow {
	var ad [4]netip.Addr
	for i := range ad {
		if a6 != nil {
			ad[i] = netip.AddrFrom16(a6[i])
		} else {
			ad[i] = netip.AddrFrom4(c.v4[i])
		}
	}
	return flow.Flow{
		Orig:  flow.Tuple{Src: ad[0], Dst: ad[1], Proto: c.proto, SrcPort: c.ports[0], DstPort: c.ports[1]},
		Reply: flow.Tuple{Src: ad[2], Dst: ad[3], Proto: c.proto, SrcPort: c.ports[2], DstPort: c.ports[3]},
		Zone:  c.zone, Mark: c.mark, Status: c.status, Timeout: c.timeout,
		TCPState: c.tcp[0], TCPWScaleOrig: c.tcp[1], TCPWScaleReply: c.tcp[2],
		TCPFlagsOrig: c.tcp[3], TCPFlagsReply: c.tcp[4],
	}
}

// sameButTimeout: c (with IPv6 addresses a6) and p differ at most in
// their timeout.
func (c *cflow) sameButTimeout(a6 *[4][16]byte, p *packed) bool {
	o := &p.c
	if (a6 != nil) != p.is6 || (a6 != nil && *a6 != p.a6) {
		return false
	}
	return c.v4 == o.v4 && c.ports == o.ports && c.mark == o.mark && c.status == o.status &&
		c.zone == o.zone && c.proto == o.proto && c.tcp == o.tcp
}

// assured and closing, as newPrio wants them.
func (c *cflow) assured() bool { return c.status&flow.StatusAssured != 0 }

func (c *cflow) closing() bool {
	if c.proto != flow.ProtoTCP {
		return false
	}
	switch c.tcp[0] {
	case flow.TCPLastAck, flow.TCPTimeWait, flow.TCPClose:
		return true
	}
	return false
}

// ckey is a flow's table key (flow.Key: original tuple and zone) in a
// fixed, comparable form.
type ckey struct {
	src, dst         [16]byte
	srcPort, dstPort uint16
	zone             uint16
	proto            uint8
	v6               bool
}

// keyOf is flow.Key k in the form of packed.key.
func keyOf(k flow.Key) ckey {
	c := ckey{srcPort: k.Orig.SrcPort, dstPort: k.Orig.DstPort, zone: k.Zone, proto: k.Orig.Proto}
	if k.Orig.Src.Is4() {
		a, b := k.Orig.Src.As4(), k.Orig.Dst.As4()
		copy(c.src[:], a[:])
		copy(c.dst[:], b[:])
	} else {
		c.src, c.dst, c.v6 = k.Orig.Src.As16(), k.Orig.Dst.As16(), true
	}
	return c
}

// chunkLen is the number of entries per slab chunk: the table grows a
// chunk at a time, never by copying what it holds.
const chunkLen = 1024

// noSlot is the absence of a slot.
const noSlot = ^uint32(0)

// table is a slab of entries (a flow and its bookkeeping M) with an index
// by key. Slots are reused; a slot number stays valid until remove.
type table[M any] struct {
	chunks [][]tentry[M]
	free   []uint32 // released slots, reused first
	next   uint32   // slots below next have been handed out
	n      int
	v6     [][4][16]byte // IPv6 addresses of entries (cflow.v6)
	v6free []uint32
	hash   func(ckey) uint64
	index  map[uint64]uint32 // key hash → slot
	over   map[ckey]uint32   // keys whose hash another key in index has
}

type tentry[M any] struct {
	f       cflow
	m       M
	used    bool
	indexed bool // lookup finds it (see unindex)
}

func newTable[M any]() *table[M] {
	seed := maphash.MakeSeed()
	return &table[M]{hash: func(k ckey) uint64 { return maphash.Comparable(seed, k) },
		index: map[uint64]uint32{}, over: map[ckey]uint32{}}
}

// Len is the number of entries.
func (t *table[M]) Len() int { return t.n }

// at returns the entry in slot s, which must be in use.
func (t *table[M]) at(s uint32) *tentry[M] { return &t.chunks[s/chunkLen][s%chunkLen] }

// get returns the entry in slot s, or nil if s is out of range or free.
func (t *table[M]) get(s uint32) *tentry[M] {
	if s >= t.next {
		return nil
	}
	e := t.at(s)
	if !e.used {
		return nil
	}
	return e
}

// lookup returns the slot of the entry with key k.
func (t *table[M]) lookup(k ckey) (uint32, bool) {
	if s, ok := t.index[t.hash(k)]; ok && t.key(s) == k {
		return s, true
	}
	if len(t.over) > 0 {
		s, ok := t.over[k]
		return s, ok
	}
	return noSlot, false
}

// a6 returns the IPv6 addresses of the entry in slot s, nil for IPv4.
func (t *table[M]) a6(s uint32) *[4][16]byte {
	if i := t.at(s).f.v6; i != 0 {
		return &t.v6[i-1]
	}
	return nil
}

// key, flow and flowKey expand the entry in slot s.
func (t *table[M]) key(s uint32) ckey { return t.at(s).f.keyWith(t.a6(s)) }

func (t *table[M]) flow(s uint32) flow.Flow { return t.at(s).f.flowWith(t.a6(s)) }

func (t *table[M]) flowKey(s uint32) flow.Key {
	f := t.flow(s)
	return f.Key()
}

// sameButTimeout: the entry in slot s and p differ at most in timeout.
func (t *table[M]) sameButTimeout(s uint32, p *packed) bool {
	return t.at(s).f.sameButTimeout(t.a6(s), p)
}

// set replaces the flow of the entry in slot s with p, of the same key.
func (t *table[M]) set(s uint32, p *packed) {
	e := t.at(s)
	v6 := e.f.v6
	switch {
	case p.is6 && v6 != 0:
		t.v6[v6-1] = p.a6
	case p.is6:
		v6 = t.store6(&p.a6)
	case v6 != 0:
		t.free6(v6)
		v6 = 0
	}
	e.f = p.c
	e.f.v6 = v6
}

func (t *table[M]) store6(a *[4][16]byte) uint32 {
	if n := len(t.v6free); n > 0 {
		i := t.v6free[n-1]
		t.v6free = t.v6free[:n-1]
		t.v6[i-1] = *a
		return i
	}
	t.v6 = append(t.v6, *a)
	return uint32(len(t.v6))
}

func (t *table[M]) free6(i uint32) {
	t.v6[i-1] = [4][16]byte{}
	t.v6free = append(t.v6free, i)
}

// insert adds an entry for p, whose key must not be in the table, and
// returns its slot.
func (t *table[M]) insert(p *packed, m M) uint32 {
	var s uint32
	if n := len(t.free); n > 0 {
		s, t.free = t.free[n-1], t.free[:n-1]
	} else {
		if t.next%chunkLen == 0 {
			t.chunks = append(t.chunks, make([]tentry[M], chunkLen))
		}
		s = t.next
		t.next++
	}
	f := p.c
	if p.is6 {
		f.v6 = t.store6(&p.a6)
	}
	*t.at(s) = tentry[M]{f: f, m: m, used: true, indexed: true}
	t.n++
	k := p.key()
	h := t.hash(k)
	if _, taken := t.index[h]; taken {
		t.over[k] = s
	} else {
		t.index[h] = s
	}
	return s
}

// remove frees slot s.
func (t *table[M]) remove(s uint32) {
	e := t.get(s)
	if e == nil {
		return
	}
	t.unindex(s)
	if e.f.v6 != 0 {
		t.free6(e.f.v6)
	}
	*e = tentry[M]{}
	t.free = append(t.free, s)
	t.n--
	if t.n == 0 {
		t.reset()
	}
}

// unindex takes the entry in slot s out of the index: lookup no longer
// finds it, and another entry with its key may be inserted, but the slot
// stays in use until remove.
func (t *table[M]) unindex(s uint32) {
	e := t.get(s)
	if e == nil || !e.indexed {
		return
	}
	e.indexed = false
	k := t.key(s)
	h := t.hash(k)
	if o, ok := t.index[h]; ok && o == s {
		delete(t.index, h)
		return
	}
	delete(t.over, k)
}

// indexed reports whether lookup finds the entry in slot s.
func (t *table[M]) indexed(s uint32) bool {
	e := t.get(s)
	return e != nil && e.indexed
}

// reset empties the table and gives its memory back.
func (t *table[M]) reset() {
	t.chunks, t.free, t.next, t.n = nil, nil, 0, 0
	t.v6, t.v6free = nil, nil
	t.index, t.over = map[uint64]uint32{}, map[ckey]uint32{}
}

// each calls fn for every entry in slot order until fn returns false. fn
// may remove the entry it is given.
func (t *table[M]) each(fn func(s uint32, e *tentry[M]) bool) {
	for s := uint32(0); s < t.next; s++ {
		if e := t.at(s); e.used && !fn(s, e) {
			return
		}
	}
}
