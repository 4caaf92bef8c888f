//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/ctsync/kernel"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/logx"
)

// The lab: the firewall pair of e2e/sync_test.go, measured in BENCHMARKS.md.
//
//	client 10.0.1.100 ── lan ── r1 10.0.1.2 (+ LAN VIP 10.0.1.1), r2 10.0.1.3
//	server 10.0.2.100 ── wan ── r1 10.0.2.2 (+ WAN VIP 10.0.2.1), r2 10.0.2.3
//	                     sync ── r1 10.0.3.2, r2 10.0.3.3 (the dedicated link)
//
// r1 is the master for the whole run: it holds both VIPs (added by hand, so
// that carpd and conntrackd see exactly the same router), forwards the
// client's connections and source-NATs them to the WAN VIP. r2 is the
// backup. Both run the same stateful nftables ruleset.
const (
	clientAddr = "10.0.1.100"
	serverAddr = "10.0.2.100"
	serverPort = 5000
	lanVIP     = "10.0.1.1"
	wanVIP     = "10.0.2.1"
	carpdPort  = 7112
	ctdPort    = 3780
)

// ruleset is lab.FirewallRuleset (the e2e sync tests' firewall) plus the sync-link counters: IP-layer
// bytes and packets of the sync UDP traffic (both daemons' ports) in and out
// of the `sync` interface, counted before any qdisc.
const ruleset = lab.FirewallRuleset + `table inet benchsync {
	counter sync_in {
	}
	counter sync_out {
	}
	chain in {
		type filter hook input priority -300; policy accept;
		iifname "sync" udp dport { 3780, 7112 } counter name "sync_in"
	}
	chain out {
		type filter hook output priority -300; policy accept;
		oifname "sync" udp dport { 3780, 7112 } counter name "sync_out"
	}
}
`

// routerSysctls: TIME_WAIT entries expire after 2 s instead of 120 s, so a
// flow's whole life (up to its DESTROY) fits in the run.
var routerSysctls = [][2]string{
	{"net.netfilter.nf_conntrack_tcp_timeout_time_wait", "2"},
}

type router struct {
	name       string
	h          *lab.Host
	addr, peer string // sync link addresses
	dir        string // config, sockets, logs
	proc       *lab.Proc
	ns         *os.File // the namespace, for kernel.Open
}

type bench struct {
	o              options
	l              *lab.Lab
	client, server *lab.Host
	r1, r2         *router // master, backup
	dir            string
	key            string // carpd's sync key
	carpdBin       string
	srv            *echoServer
	conntrackMax   string
}

func (b *bench) build(ctx context.Context) error {
	l, err := lab.New("bsync")
	if err != nil {
		return err
	}
	b.l = l
	sws := map[string]*lab.Switch{}
	for _, s := range []string{"lan", "wan", "sync"} {
		if sws[s], err = l.Switch(s); err != nil {
			return err
		}
	}
	if b.client, err = l.Host("client"); err != nil {
		return err
	}
	if _, err := l.Attach(b.client, sws["lan"], "lan", clientAddr+"/24"); err != nil {
		return err
	}
	if b.server, err = l.Host("server"); err != nil {
		return err
	}
	if _, err := l.Attach(b.server, sws["wan"], "wan", serverAddr+"/24"); err != nil {
		return err
	}
	rules := filepath.Join(b.dir, "rules.nft")
	if err := os.WriteFile(rules, []byte(ruleset), 0o644); err != nil {
		return err
	}
	for i := range 2 {
		name := fmt.Sprintf("r%d", i+1)
		h, err := l.Host(name)
		if err != nil {
			return err
		}
		r := &router{name: name, h: h, addr: fmt.Sprintf("10.0.3.%d", i+2), peer: fmt.Sprintf("10.0.3.%d", 3-i),
			dir: filepath.Join(b.dir, name)}
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return err
		}
		for n, s := range []string{"lan", "wan", "sync"} {
			if _, err := l.Attach(h, sws[s], s, fmt.Sprintf("10.0.%d.%d/24", n+1, i+2)); err != nil {
				return err
			}
		}
		for _, kv := range routerSysctls {
			if err := h.Sysctl(kv[0], kv[1]); err != nil {
				return err
			}
		}
		if _, err := h.Run(ctx, "nft", "-f", rules); err != nil {
			return err
		}
		if r.ns, err = os.Open(filepath.Join("/run/netns", h.NS)); err != nil {
			return err
		}
		if i == 0 {
			b.r1 = r
		} else {
			b.r2 = r
		}
	}
	// r1 is the master: both VIPs, for the whole run.
	if err := b.r1.h.AddAddr("lan", lanVIP+"/24"); err != nil {
		return err
	}
	if err := b.r1.h.AddAddr("wan", wanVIP+"/24"); err != nil {
		return err
	}
	if _, err := b.client.Run(ctx, "ip", "route", "add", "default", "via", lanVIP); err != nil {
		return err
	}
	// nf_conntrack_max is read-only inside a namespace on this kernel; the
	// global limit applies. Record it, and refuse to run if it is too low.
	max, err := readSysctlIn(b.r1.h, "net/netfilter/nf_conntrack_max")
	if err != nil {
		return err
	}
	b.conntrackMax = max
	if n, _ := strconv.Atoi(max); n < b.o.events+10_000 {
		if err := b.r1.h.Sysctl("net.netfilter.nf_conntrack_max", "262144"); err != nil {
			return fmt.Errorf("nf_conntrack_max is %s, below the %d flows of the events phase, and cannot be raised in the namespace: %w (raise it globally)", max, b.o.events, err)
		}
	}
	var k [32]byte
	_, _ = rand.Read(k[:])
	b.key = hex.EncodeToString(k[:])
	return nil
}

// readSysctlIn reads /proc/sys/<key> in h's network namespace.
func readSysctlIn(h *lab.Host, key string) (string, error) {
	var s string
	err := h.Do(func() error {
		v, err := os.ReadFile(filepath.Join("/proc/sys", key))
		s = strings.TrimSpace(string(v))
		return err
	})
	return s, err
}

// ctCount is the number of conntrack entries in r's namespace.
func ctCount(r *router) (int, error) {
	s, err := readSysctlIn(r.h, "net/netfilter/nf_conntrack_count")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(s)
}

// flushCT empties r's conntrack table.
func (b *bench) flushCT(ctx context.Context, r *router) error {
	_, err := r.h.Run(ctx, "conntrack", "-F")
	return err
}

// counters are the master's sync-link counters (IP layer): in is what the
// backup sent, out what the master sent; together, everything on the link.
type counters struct {
	at                      time.Time
	inB, inP, outB, outP    uint64
	l2rx, l2tx, l2rp, l2tpk uint64 // the veth's own counters (everything, ARP included)
}

func (c counters) bytes() uint64   { return c.inB + c.outB }
func (c counters) packets() uint64 { return c.inP + c.outP }

func (c counters) sub(o counters) counters {
	return counters{at: c.at, inB: c.inB - o.inB, inP: c.inP - o.inP, outB: c.outB - o.outB, outP: c.outP - o.outP,
		l2rx: c.l2rx - o.l2rx, l2tx: c.l2tx - o.l2tx, l2rp: c.l2rp - o.l2rp, l2tpk: c.l2tpk - o.l2tpk}
}

// l2 is the sync traffic at layer 2: IP bytes plus a 14-byte Ethernet
// header per frame (no preamble, no FCS): the L2 figures of BENCHMARKS.md.
func (c counters) l2() uint64 { return c.bytes() + 14*c.packets() }

func readCounters(ctx context.Context, r *router) (counters, error) {
	c := counters{}
	out, err := r.h.Run(ctx, "nft", "-j", "list", "counters", "table", "inet", "benchsync")
	if err != nil {
		return c, err
	}
	c.at = time.Now()
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
				Bytes   uint64 `json:"bytes"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return c, fmt.Errorf("nft counters: %w", err)
	}
	for _, e := range doc.Nftables {
		if e.Counter == nil {
			continue
		}
		switch e.Counter.Name {
		case "sync_in":
			c.inB, c.inP = e.Counter.Bytes, e.Counter.Packets
		case "sync_out":
			c.outB, c.outP = e.Counter.Bytes, e.Counter.Packets
		}
	}
	// The veth's counters, as a cross-check (they include ARP and IPv6 noise).
	out, err = r.h.Run(ctx, "ip", "-s", "-j", "link", "show", "dev", "sync")
	if err == nil {
		var links []struct {
			Stats struct {
				RX struct{ Bytes, Packets uint64 } `json:"rx"`
				TX struct{ Bytes, Packets uint64 } `json:"tx"`
			} `json:"stats64"`
		}
		if json.Unmarshal([]byte(out), &links) == nil && len(links) == 1 {
			s := links[0].Stats
			c.l2rx, c.l2tx, c.l2rp, c.l2tpk = s.RX.Bytes, s.TX.Bytes, s.RX.Packets, s.TX.Packets
		}
	}
	return c, nil
}

// shape puts (or with rate "" removes) a rate limit on both routers' sync
// interfaces. netem is not built into every kernel (CONFIG_NET_SCH_NETEM),
// TBF is everywhere: a bucket of one full frame (no burst above the rate,
// as netem's rate) and a queue of queue bytes (-bulk-queue: 1.5 MB, about
// netem's default limit of 1000 full-size packets).
func (b *bench) shape(ctx context.Context, rate string, queue int) error {
	var errs []error
	for _, r := range []*router{b.r1, b.r2} {
		var err error
		if rate == "" {
			_, err = r.h.Run(ctx, "tc", "qdisc", "del", "dev", "sync", "root")
		} else {
			_, err = r.h.Run(ctx, "tc", "qdisc", "replace", "dev", "sync", "root", "tbf", "rate", rate,
				"burst", "1600", "limit", strconv.Itoa(queue))
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// openCT opens conntrack in r's namespace with no router-local filtering
// (everything of protos; nil means the default protocols).
func openCT(r *router, protos []uint8, log *logx.Logger) (*kernel.Conntrack, error) {
	if log == nil {
		log = logx.New(logx.DiscardHandler)
	}
	return kernel.Open(kernel.Config{
		NetNS:       int(r.ns.Fd()),
		Filter:      kernel.Filter{Local: kernel.NoLocalAddrs, Protocols: protos},
		Log:         log,
		EventBuffer: 1 << 16,
	})
}
