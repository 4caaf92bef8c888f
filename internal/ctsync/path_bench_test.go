package ctsync

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/ctsync/wire"
)

// discardConn is a socket that sends nowhere.
type discardConn struct{ net.PacketConn }

func (discardConn) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }

// BenchmarkEventPath is the master's path for one short flow, on the
// engine goroutine alone (no peer engine, no scheduler): its NEW event
// into the table, its record encoded and sealed in a frame with others
// (a flush every 32 flows, as under a burst), the frame acknowledged,
// and its DESTROY 1024 flows later. allocs/op and B/op are exact;
// ns/op is CPU on an otherwise quiet machine.
func BenchmarkEventPath(b *testing.B) {
	e, err := New(Config{Key: testKey, Peer: netip.MustParseAddrPort("10.99.0.2:7112")}, nil, discardConn{})
	if err != nil {
		b.Fatal(err)
	}
	// Establish e's session with a peer session, by hand.
	peer, err := wire.NewSession(wire.SessionConfig{Key: testKey, Epoch: 7, Nonce: [wire.NonceLen]byte{9}})
	if err != nil {
		b.Fatal(err)
	}
	h1, _, _ := e.sess.SealHello(nil, nil)
	if _, err := peer.Open(nil, h1); err != nil {
		b.Fatal(err)
	}
	h2, _, _ := peer.SealHello(nil, nil)
	if _, err := e.sess.Open(nil, h2); err != nil || !e.sess.Established() {
		b.Fatalf("session: %v", err)
	}
	now := time.Unix(1_800_000_000, 0)
	e.lastRecv = now
	const live, batch = 1024, 32
	flows := make([]flow.Flow, live)
	for i := range flows {
		flows[i] = tcpFlow(i, flow.TCPEstablished)
		flows[i].Orig.Src = netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		flows[i].Reply.Dst = flows[i].Orig.Src
	}
	ev := flow.Event{Type: flow.EventNew}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev.Type, ev.Flow = flow.EventNew, flows[i%live]
		ev.Flow.Orig.SrcPort = uint16(i / live)
		ev.Flow.Reply.DstPort = ev.Flow.Orig.SrcPort
		if i >= live {
			// The same slot's previous flow goes (a DESTROY).
			old := ev
			old.Type, old.Flow.Orig.SrcPort, old.Flow.Reply.DstPort = flow.EventDestroy, uint16(i/live-1), uint16(i/live-1)
			e.event(context.Background(), &old)
		}
		e.event(context.Background(), &ev)
		if i%batch == batch-1 {
			e.lastRecv = now
			e.flush(now, numPrios-1)
			e.acked(wire.Ack{Cum: 1 << 62}, now)
		}
	}
}
