package kernel

import (
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// benchFlows returns n distinct masqueraded TCP flows, spread over NAT
// addresses so that no two share a mapping.
func benchFlows(n int) []flow.Flow {
	fs := make([]flow.Flow, n)
	for i := range fs {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		nat := netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + i/60000)})
		fs[i] = tcpFlow(src, 40000, server, 443, server, 443, nat, uint16(1024+i%60000))
	}
	return fs
}

// BenchmarkApply injects flows in batches of 256 in a fresh namespace and
// reports flows/s: "create" makes new entries (the table is flushed,
// untimed, every 100 000), "update" applies the same 100 000 flows again,
// the EEXIST → lookup → update path.
func BenchmarkApply(b *testing.B) {
	const (
		batch = 256
		table = 100_000
	)
	_, ns := testNS(b)
	c := openCT(b, ns, Config{Log: logx.New(logx.DiscardHandler)})
	flush := flusher(b, ns)
	fs := benchFlows(table)
	ctx := testCtx(b)

	run := func(b *testing.B, flushFull bool) {
		done := 0
		start := time.Now()
		var paused time.Duration
		for i := 0; i < b.N; {
			off := i % table
			if flushFull && off == 0 && i > 0 {
				b.StopTimer()
				t0 := time.Now()
				if err := flush(); err != nil {
					b.Fatal(err)
				}
				paused += time.Since(t0)
				b.StartTimer()
			}
			n := min(batch, b.N-i, table-off)
			for k, err := range c.Apply(ctx, fs[off:off+n]) {
				if err != nil {
					b.Fatalf("flow %d: %v", off+k, err)
				}
			}
			done += n
			i += n
		}
		if d := time.Since(start) - paused; d > 0 {
			b.ReportMetric(float64(done)/d.Seconds(), "flows/s")
		}
	}
	b.Run("create", func(b *testing.B) {
		if err := flush(); err != nil {
			b.Fatal(err)
		}
		run(b, true)
	})
	b.Run("update", func(b *testing.B) {
		if err := flush(); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < table; i += 4096 {
			for _, err := range c.Apply(ctx, fs[i:min(i+4096, table)]) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ResetTimer()
		run(b, false)
	})
}

// flusher returns a function that empties the IPv4 conntrack table of the
// namespace ns: a CT_DELETE without a tuple, acknowledged.
func flusher(tb testing.TB, ns int) func() error {
	conn, err := nl.Dial(unix.NETLINK_NETFILTER, &nl.Config{NetNS: ns})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return func() error {
		_, err := conn.Execute(nl.Message{
			Header: nl.Header{Type: ctHeaderType(ipctnlMsgCTDelete), Flags: nl.Request | nl.Acknowledge},
			Data:   []byte{unix.AF_INET, 0, 0, 0}, // struct nfgenmsg
		})
		return err
	}
}
