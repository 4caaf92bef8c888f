package wire

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// Link budget (docs/sync-protocol.md#link-budget).
const (
	ipUDPOverhead = 28   // IPv4 20 + UDP 8
	datagramMax   = 1400 // bytes at the IP layer
	// lifecycleBudget is the format's target: bytes on the sync link per
	// short masqueraded TCP flow, NEW + UPD + DEL, framing included.
	lifecycleBudget = 40
)

// packFrames seals recs into as few data frames of at most datagramMax
// bytes (IP layer) as the encoder packs them, and returns the number of
// frames and their bytes at the IP layer.
func packFrames(t testing.TB, s *Session, recs []Record) (frames, bytes int) {
	t.Helper()
	var e Encoder
	e.Limit = datagramMax - ipUDPOverhead - Overhead
	flush := func() {
		f, _, err := s.Seal(nil, e.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		frames++
		bytes += ipUDPOverhead + len(f)
		e.Reset(e.Bytes()[:0])
	}
	e.Reset(make([]byte, 0, datagramMax))
	for i := range recs {
		err := e.Append(&recs[i])
		if errors.Is(err, ErrFrameFull) {
			flush()
			err = e.Append(&recs[i])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if e.Len() > 0 {
		flush()
	}
	return frames, bytes
}

func recordBytes(t testing.TB, recs []Record) int {
	t.Helper()
	return len(mustAppend(t, recs))
}

// lifecycle returns the NEW, UPD and DEL records of short masqueraded TCP
// flows with the given ids. With tcpOpts the flows carry window scaling
// and SACK as the kernel reports them (the sink needs them, docs/sync-protocol.md#what-ctnetlink-requires): the
// originator's in NEW (SYN_SENT), both in the UPD to ESTABLISHED.
func lifecycle(ids []uint64, tcpOpts ...bool) (news, upds, dels []Record) {
	for i, id := range ids {
		f := masqFlow(i)
		if len(tcpOpts) > 0 && tcpOpts[0] {
			f.TCPWScaleOrig, f.TCPFlagsOrig = 7, flow.TCPFlagWindowScale|flow.TCPFlagSACKPerm
		}
		news = append(news, Record{Type: RecordNew, ID: id, Flow: f})
		u := f
		u.TCPState, u.Timeout = flow.TCPEstablished, 432000
		u.Status |= flow.StatusSeenReply | flow.StatusAssured
		if u.TCPWScaleOrig != 0 {
			u.TCPWScaleReply, u.TCPFlagsReply = 9, u.TCPFlagsOrig
		}
		upds = append(upds, Record{Type: RecordUpdate, ID: id, Version: 1, Flow: u})
		dels = append(dels, Record{Type: RecordDelete, ID: id})
	}
	return news, upds, dels
}

// TestLifecycleSize logs the bytes per flow of the typical lifecycle and
// asserts the format's budget. It is a property of the encoding (fixed
// inputs, deterministic output), not a timing.
func TestLifecycleSize(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	b := newSession(t, testKey, 2, 2, "")
	handshake(t, a, b)
	const n = 50

	run := func(name string, ids []uint64, tcpOpts bool) float64 {
		n := len(ids)
		news, upds, dels := lifecycle(ids, tcpOpts)
		rn, ru, rd := recordBytes(t, news), recordBytes(t, upds), recordBytes(t, dels)
		fn, bn := packFrames(t, a, news)
		fu, bu := packFrames(t, a, upds)
		fd, bd := packFrames(t, a, dels)
		perFlow := float64(bn+bu+bd) / float64(n)
		t.Logf("%s (%d flows): records NEW %.1f B, UPD %.1f B, DEL %.1f B per flow (%.1f B); "+
			"frames %d+%d+%d, %d B at the IP layer: %.1f B per flow lifecycle",
			name, n, float64(rn)/float64(n), float64(ru)/float64(n), float64(rd)/float64(n), float64(rn+ru+rd)/float64(n),
			fn, fu, fd, bn+bu+bd, perFlow)
		return perFlow
	}

	consecutive := make([]uint64, n)
	for i := range consecutive {
		consecutive[i] = uint64(100000 + i)
	}
	if got := run("consecutive ids, one frame per phase", consecutive, false); got > lifecycleBudget {
		t.Errorf("%.1f bytes per flow lifecycle, budget %d", got, lifecycleBudget)
	}
	if got := run("consecutive ids, with TCP window scale and SACK", consecutive, true); got > lifecycleBudget {
		t.Errorf("%.1f bytes per flow lifecycle with TCP options, budget %d", got, lifecycleBudget)
	}

	// Harder: 50 flows picked from a table of 20 000, so ids are sparse.
	rng := rand.New(rand.NewPCG(5, 6))
	sparse := make([]uint64, n)
	for i := range sparse {
		sparse[i] = uint64(100000 + rng.IntN(20000))
	}
	slices.Sort(sparse)
	sparse = slices.Compact(sparse)
	if got := run("sparse ids among 20k, with TCP options", sparse, true); got > lifecycleBudget {
		t.Errorf("%.1f bytes per flow lifecycle (sparse), budget %d", got, lifecycleBudget)
	}

	// Single records: the first of a frame (id 1), and the marginal cost
	// of a second one (id 2, masquerade address in the table).
	news, upds, dels := lifecycle([]uint64{1, 2})
	for _, r := range []struct {
		name string
		recs []Record
	}{{"NEW masquerade", news}, {"UPD ESTABLISHED", upds}, {"DEL", dels}} {
		first := recordBytes(t, r.recs[:1])
		t.Logf("%-16s first in frame %2d B, next %2d B", r.name, first, recordBytes(t, r.recs)-first)
	}
	// Idle: one PING or ACK datagram per keepalive interval and direction.
	ping := ipUDPOverhead + Overhead + recordBytes(t, []Record{{Type: RecordPing}})
	ack := ipUDPOverhead + Overhead + recordBytes(t, []Record{{Type: RecordAck, Ack: Ack{Cum: 1 << 20}}})
	t.Logf("idle: PING datagram %d B, ACK datagram %d B; a keepalive every 5 s each way costs %.1f B/s",
		ping, ack, float64(2*ack)/5)
}

// TestBulkSize logs what a bulk transfer of a mixed table costs.
func TestBulkSize(t *testing.T) {
	a := newSession(t, testKey, 1, 1, "")
	b := newSession(t, testKey, 2, 2, "")
	handshake(t, a, b)
	flows := sampleFlows()
	var shapes []flow.Flow
	for _, f := range flows {
		shapes = append(shapes, f)
	}
	slices.SortFunc(shapes, func(x, y flow.Flow) int { return int(x.Orig.SrcPort) - int(y.Orig.SrcPort) })
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 20000
	var recs []Record
	for i := range n {
		var f flow.Flow
		if rng.IntN(10) < 8 { // mostly masquerade, with random remaining timeouts
			f = masqFlow(rng.IntN(1 << 16))
			f.TCPState, f.Status = flow.TCPEstablished, f.Status|flow.StatusAssured|flow.StatusSeenReply
			f.Timeout = uint32(rng.IntN(432000)) + 1
		} else {
			f = shapes[rng.IntN(len(shapes))]
		}
		recs = append(recs, Record{Type: RecordNew, ID: uint64(i + 1), Version: uint64(rng.IntN(4)), Flow: f})
	}
	frames, bytes := packFrames(t, a, recs)
	t.Logf("bulk of %d flows: %d frames, %d B at the IP layer, %.1f B per flow", n, frames, bytes, float64(bytes)/n)
}
