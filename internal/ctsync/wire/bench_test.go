package wire

import (
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// benchRecords is one frame's worth of a busy link: NEWs of masqueraded
// flows, UPDs and DELs, sorted by id as a sender would emit them.
func benchRecords() []Record {
	var recs []Record
	for i := range 48 {
		id := uint64(200000 + i)
		switch i % 3 {
		case 0:
			recs = append(recs, Record{Type: RecordNew, ID: id, Flow: masqFlow(i)})
		case 1:
			recs = append(recs, Record{Type: RecordUpdate, ID: id, Version: 1, Flow: flow.Flow{TCPState: flow.TCPEstablished,
				Status: flow.StatusConfirmed | flow.StatusAssured | flow.StatusSeenReply, Timeout: 432000}})
		default:
			recs = append(recs, Record{Type: RecordDelete, ID: id})
		}
	}
	return recs
}

func reportRecords(b *testing.B, n int) {
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkAppendRecords(b *testing.B) {
	for _, bc := range []struct {
		name string
		recs []Record
	}{
		{"mixed", benchRecords()},
		{"new", func() []Record {
			var r []Record
			for i := range 64 {
				r = append(r, Record{Type: RecordNew, ID: uint64(i + 1), Flow: masqFlow(i)})
			}
			return r
		}()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			var e Encoder
			b.ReportAllocs()
			for b.Loop() {
				e.Reset(buf[:0])
				for i := range bc.recs {
					if err := e.Append(&bc.recs[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.SetBytes(int64(e.Len()))
			reportRecords(b, len(bc.recs))
		})
	}
	b.Run("AppendRecords", func(b *testing.B) {
		recs := benchRecords()
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := appendRecords(buf[:0], recs); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, len(recs))
	})
}

func BenchmarkDecodeRecords(b *testing.B) {
	recs := benchRecords()
	payload := mustAppend(b, recs)
	b.Run("Decoder", func(b *testing.B) {
		var d Decoder
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			d.Reset(payload)
			n := 0
			for d.Next() {
				n++
			}
			if d.Err() != nil || n != len(recs) {
				b.Fatal(d.Err(), n)
			}
		}
		reportRecords(b, len(recs))
	})
	b.Run("DecodeRecords", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := DecodeRecords(payload, func(*Record) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, len(recs))
	})
}

func benchPair(b *testing.B) (*Session, *Session) {
	a := newSession(b, testKey, 1, 1, "")
	c := newSession(b, testKey, 2, 2, "")
	handshake(b, a, c)
	return a, c
}

func BenchmarkSeal(b *testing.B) {
	a, _ := benchPair(b)
	payload := make([]byte, 1300)
	buf := make([]byte, 0, 1500)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := a.Seal(buf[:0], payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	a, c := benchPair(b)
	payload := make([]byte, 1300)
	// Fresh frames, so the replay window lets every one through.
	frames := make([][]byte, 4096)
	for i := range frames {
		frames[i], _, _ = a.Seal(nil, payload)
	}
	buf := make([]byte, 0, 1500)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(frames) {
			b.StopTimer()
			for j := range frames {
				frames[j], _, _ = a.Seal(frames[j][:0], payload)
			}
			i = 0
			b.StartTimer()
		}
		if _, err := c.Open(buf[:0], frames[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkDigestAdd(b *testing.B) {
	f := masqFlow(1)
	k := f.Key()
	var d Digest
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		d.Add(i, k)
	}
}
