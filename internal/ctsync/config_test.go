package ctsync

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/cfgsync"
	"github.com/carpd/carpd/internal/ctsync/wire"
)

// configSink collects what Config.OnConfig delivers.
type configSink struct {
	mu        sync.Mutex
	asm       cfgsync.Assembler
	objs      []*cfgsync.Object
	acks      []wire.ConfigAck
	malformed int
}

func (s *configSink) on(r *wire.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r == nil:
		s.malformed++
	case r.Type == wire.RecordConfigAck:
		s.acks = append(s.acks, *r.ConfigAck)
	default:
		if o, _ := s.asm.Add(r.Config); o != nil {
			s.objs = append(s.objs, o)
		}
	}
}

func (s *configSink) got() (objs int, acks int, malformed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objs), len(s.acks), s.malformed
}

// TestConfigRecordsExchanged: an object in chunks goes through the
// engine under its byte cap and comes out whole on the other side; an
// answer comes back; a configuration record that does not parse reaches
// OnConfig as nil (counted by the config sync) and as drop_malformed.
func TestConfigRecordsExchanged(t *testing.T) {
	var sa, sb configSink
	const bw = 40000 // bytes/s
	l, a, b := syncedPairOn(t, newClockedLink(), 0, func(c *Config) {
		c.Bandwidth = bw
		if c.Name == "n0" {
			c.OnConfig = sa.on
		} else {
			c.OnConfig = sb.on
		}
	})
	l.eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().PeerUp && b.e.Status().PeerUp })
	data := bytes.Repeat([]byte("config rule\n\toption name 'x'\n"), 3000) // 87 KB
	recs := cfgsync.Chunks("firewall", false, false, data)
	before := a.e.Status().Counters.BytesSent
	start := l.clk.Now()
	if !a.e.SendConfig(recs) {
		t.Fatal("SendConfig refused")
	}
	l.eventually(t, 10*time.Second, "the object on b", func() bool { n, _, _ := sb.got(); return n == 1 })
	took := l.clk.Now().Sub(start)
	if o := sb.objs[0]; o.Name != "firewall" || !bytes.Equal(o.Data, data) {
		t.Fatalf("got %s, %d bytes", o.Name, len(o.Data))
	}
	// Within the cap: the bytes on the link at bw take at least this long.
	sent := a.e.Status().Counters.BytesSent - before
	if min := time.Duration(sent-bw/4) * time.Second / bw; took < min*9/10 {
		t.Errorf("%d bytes in %v: faster than the cap allows (%v)", sent, took, min)
	}
	if over := float64(sent) / float64(len(data)); over > 1.15 {
		t.Errorf("%d bytes on the link for %d of data (%.2fx)", sent, len(data), over)
	}
	b.e.SendConfig([]wire.Record{{Type: wire.RecordConfigAck, ConfigAck: &wire.ConfigAck{Status: cfgsync.AckWritten, Name: "firewall", Hash: cfgsync.Sum(data)}}})
	l.eventually(t, 2*time.Second, "the answer on a", func() bool { _, n, _ := sa.got(); return n == 1 })
	if sa.acks[0].Hash != cfgsync.Sum(data) {
		t.Errorf("ack %+v", sa.acks[0])
	}
	// A CONFIG record that does not parse (no data for a total of 1).
	payload := []byte{0x12, 0x25, 0, 1, 'a'}
	payload = append(payload, make([]byte, 32)...)
	payload = append(payload, 1, 0)
	drops := b.e.Status().Counters.DropMalformed
	a.e.do(t.Context(), func() { a.e.send(payload, a.e.cfg.Clock.Now(), false) })
	l.eventually(t, time.Second, "the malformed record reported", func() bool { _, _, n := sb.got(); return n == 1 })
	if got := b.e.Status().Counters.DropMalformed; got != drops+1 {
		t.Errorf("drop_malformed %d, want %d", got, drops+1)
	}
	// Nothing goes while the session is down; the queue is bounded.
	if a.e.SendConfig(make([]wire.Record, maxConfigQueue+1)) {
		t.Error("a queue over its bound taken")
	}
}
