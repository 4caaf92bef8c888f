package carp

import (
	"context"
	"net/netip"
	"testing"
)

// nopNet is a Sender and Announcer that does nothing and allocates nothing,
// so that the allocations measured are the vhost's own.
type nopNet struct{ self netip.Addr }

func (n nopNet) Send([]byte, netip.Addr) error              { return nil }
func (n nopNet) Source(bool) netip.Addr                     { return n.self }
func (n nopNet) IsLocal(a netip.Addr) bool                  { return a == n.self }
func (nopNet) Add(context.Context, []netip.Prefix) error    { return nil }
func (nopNet) Remove(context.Context, []netip.Prefix) error { return nil }
func (nopNet) Announce(context.Context, []netip.Addr) error { return nil }

// TestAdvertPathAllocs: sending an advert (master) and taking one in
// (backup: the reader's checks and the vhost's step) allocate nothing, at
// a few adverts per second per vhid on a router that runs for months.
func TestAdvertPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	au := NewAuth("secret", 1, []netip.Addr{netip.MustParseAddr("192.0.2.1")})
	var mac [20]byte
	if n := testing.AllocsPerRun(100, func() { mac = au.Sum(7) }); n != 0 {
		t.Errorf("Auth.Sum: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { au.Verify(7, mac) }); n != 0 {
		t.Errorf("Auth.Verify: %v allocations, want 0", n)
	}

	cfg := VHostConfig{Interface: "lan", VHID: 1, Params: Params{AdvBase: 0, AdvSkew: 26}, Password: "secret",
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
	master := NewVHost(cfg, nopNet{self: netip.MustParseAddr("192.0.2.2")}, nopNet{}, nil, nil)
	master.m.Self = master.tx.Source(false)
	act := ActSend{AdvBase: 0, AdvSkew: 26}
	if n := testing.AllocsPerRun(100, func() { master.send(act) }); n != 0 {
		t.Errorf("sending an advert: %v allocations, want 0", n)
	}

	// The backup takes in the master's adverts, each with a newer sequence.
	backup := NewVHost(cfg, nopNet{self: netip.MustParseAddr("192.0.2.3")}, nopNet{}, nil, nil)
	backup.m.Self = backup.tx.Source(false)
	backup.step(EvStart{})
	src := netip.MustParseAddr("192.0.2.2")
	var payloads [][]byte
	for range 120 {
		a := Advert{Version: Version, Type: TypeAdvertisement, VHID: 1, AdvSkew: 26, AuthLen: AuthLen}
		a.Counter = EncodeCounter(CarpdCounter{Marker: master.auth.Marker(src), AdvSkew: 26, Seq: master.rx.nextSeq(master.clk.Now())})
		a.HMAC = master.auth.Sum(a.Counter)
		b, _ := a.MarshalBinary()
		payloads = append(payloads, b)
	}
	i := 0
	n := testing.AllocsPerRun(100, func() {
		ad, ok := backup.admit(rxPacket{src: src, dst: Group4, ttl: TTL, payload: payloads[i]})
		i++
		if !ok {
			t.Fatal("advert refused")
		}
		backup.receive(rxAdvert{src: src, a: ad})
	})
	if n != 0 {
		t.Errorf("receiving an advert: %v allocations, want 0", n)
	}
	if backup.m.State != Backup {
		t.Errorf("backup is %v", backup.m.State)
	}
}
