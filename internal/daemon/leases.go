package daemon

// DHCP lease sync (option lease_sync in config sync): a worker watches
// dnsmasq's lease file and hands the sync engine the leases in it (the
// engine sends what changed); it merges the peer's lease events (per
// address the later expiry wins, a release removes) and, while dnsmasq
// does not run here (dnsmasqHere), writes the merged set to the file
// atomically, for the dnsmasq a service role starts when
// this router takes over. Events that name an address outside the
// networks of the vhids' addresses, or an absurd expiry, are refused and
// counted, never written.

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/internal/leases"
)

const (
	// leasePoll: how often the file is looked at (a stat; it is read
	// only when it changed).
	leasePoll = 200 * time.Millisecond
	// leaseIdle: how often the worker looks whether lease sync was
	// turned on.
	leaseIdle = 2 * time.Second
	// maxLeaseFile bounds the file read.
	maxLeaseFile = 8 << 20
	// maxLeaseAhead: an expiry further ahead is absurd (dnsmasq's
	// longest finite lease is a year).
	maxLeaseAhead = 2 * 365 * 24 * 3600
	// minLeaseExpiry: an expiry before 2001 is absurd.
	minLeaseExpiry = 978307200
)

// LeaseStatus is sync.leases in status.
type LeaseStatus struct {
	Enabled   bool              `json:"enabled"`
	File      string            `json:"file,omitempty"`
	Local     int               `json:"local"`
	Peer      int               `json:"peer"`
	Sent      uint64            `json:"sent"`
	Received  uint64            `json:"received"`
	Written   uint64            `json:"written"`
	Refused   map[string]uint64 `json:"refused"`
	LastWrite time.Time         `json:"last_write,omitzero"`
	Error     string            `json:"error,omitempty"`
}

// leaseEngine is the sync engine as the worker uses it: a pointer (no
// interface: an *ctsync.Engine in an interface would link the methods of
// every type in its configuration, 6 KB on MIPS); nil when there is none.
type leaseEngine = *ctsync.Engine

var errLeaseFile = errors.New("lease file over 8 MiB")

// leaseView is what the worker needs of the daemon, taken on the loop.
type leaseView struct {
	on     bool
	file   string
	engine leaseEngine
	master bool // dnsmasq runs here: the file is its own (dnsmasqHere)
	nets   []netip.Prefix
}

func (d *Daemon) leaseView() leaseView {
	sc := d.cfg.Sync
	v := leaseView{on: sc.Enabled && sc.LeaseSync, file: sc.LeaseFile}
	if d.sync != nil {
		v.engine = d.sync.engine
	}
	v.master = d.dnsmasqHere()
	for _, c := range d.cfg.VHIDs {
		v.nets = append(v.nets, c.Addresses...)
	}
	return v
}

// dnsmasqHere reports whether dnsmasq runs on this router, so that its
// lease file is not the worker's to write: with a service role for dnsmasq
// (docs/services.md), while the role of one is master (its vhids decide,
// not the others: a router that is MASTER of the WAN vhid only has its
// dnsmasq stopped); without one, while any vhid is MASTER.
func (d *Daemon) dnsmasqHere() bool {
	managed := false
	for _, se := range d.services {
		if u := se.cfg.Unit; u == "dnsmasq" || strings.HasPrefix(u, "dnsmasq.") || strings.HasPrefix(u, "dnsmasq@") {
			if se.role == roleMaster {
				return true
			}
			managed = true
		}
	}
	if managed {
		return false
	}
	for _, ve := range d.vhosts {
		if ve.v != nil && ve.v.Status().State == carp.Master.String() {
			return true
		}
	}
	return false
}

// leaseWorker is the worker's state (its goroutine's), and the status it
// publishes.
type leaseWorker struct {
	eng   leaseEngine
	file  string
	stamp leaseStamp
	local leases.Set // the file as last read or written
	tail  string     // the file's DHCPv6 part, kept
	other []string   // the file's lines that are not leases, kept
	peer  leases.Set // what the peer told us
	want  leases.Set // local with the peer's events: what the file should hold
	dirty bool       // want may differ from local

	mu sync.Mutex
	st LeaseStatus
}

type leaseStamp struct{ size, mtime int64 }

func stampOf(fi os.FileInfo) leaseStamp {
	return leaseStamp{fi.Size(), fi.ModTime().UnixNano()}
}

// runLeases is the worker's goroutine.
func (d *Daemon) runLeases(ctx context.Context) {
	defer d.bg.Done()
	w := &d.leases
	t := time.NewTicker(leasePoll)
	defer t.Stop()
	for {
		var v leaseView
		if d.do(func() { v = d.leaseView() }) != nil {
			return
		}
		var evs []leases.Event
		if v.on && v.engine != nil {
			evs = v.engine.LeaseEvents()
		}
		if s := w.step(v, evs, time.Now()); s != nil {
			v.engine.SetLeases(s)
		}
		var notify <-chan struct{}
		if v.on && v.engine != nil {
			notify = v.engine.LeaseNotify()
		}
		// Off: a look every leaseIdle (a reload that turns it on is seen
		// that late), not a wake-up of the loop five times a second.
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-notify:
			}
			if v.on || n >= int(leaseIdle/leasePoll) {
				break
			}
		}
	}
}

// step looks at the file, merges the peer's events evs and writes the
// file if it may; it returns the set to hand the engine, if any.
func (w *leaseWorker) step(v leaseView, evs []leases.Event, now time.Time) leases.Set {
	if !v.on {
		w.eng, w.file, w.stamp, w.local, w.peer, w.want, w.tail, w.other, w.dirty = nil, "", leaseStamp{}, nil, nil, nil, "", nil, false
		w.publish(v, "")
		return nil
	}
	if v.file != w.file {
		w.file, w.stamp, w.local, w.peer, w.want, w.tail, w.other = v.file, leaseStamp{}, nil, leases.Set{}, nil, "", nil
	}
	errText := ""
	fresh := v.engine != w.eng
	w.eng = v.engine
	if fi, err := os.Stat(w.file); err == nil {
		if s := stampOf(fi); s != w.stamp || w.local == nil {
			if err := w.read(s); err != nil {
				errText = err.Error()
			} else {
				fresh = true
			}
		}
	} else if os.IsNotExist(err) {
		if w.local == nil || w.stamp != (leaseStamp{}) {
			w.local, w.stamp, w.tail, w.other, fresh = leases.Set{}, leaseStamp{}, "", nil, true
			w.rebase()
		}
	} else {
		errText = err.Error()
	}
	var send leases.Set
	if fresh && w.eng != nil && w.local != nil {
		send = copySet(w.local)
	}
	for _, ev := range evs {
		if r := refuseLease(&ev, v.nets, now); r != "" {
			w.refuse(r)
			continue
		}
		if _, known := w.peer[ev.Lease.Addr]; !known && ev.Op != leases.Release && len(w.peer) >= leases.MaxPeerLeases {
			w.refuse("too_many")
			continue
		}
		w.peer.Apply(ev)
		if w.want != nil && w.want.Apply(ev) {
			w.dirty = true
		}
	}
	if w.dirty && !v.master && w.want != nil {
		if err := w.write(now); err != nil {
			errText = err.Error()
		}
	}
	w.publish(v, errText)
	return send
}

// read takes the file in; want is it with the peer's leases over it.
func (w *leaseWorker) read(s leaseStamp) error {
	if s.size > maxLeaseFile {
		return errLeaseFile
	}
	b, err := os.ReadFile(w.file)
	if err != nil {
		return err
	}
	f, _ := leases.Parse(b)
	w.local, w.tail, w.other, w.stamp = leases.SetOf(f.Leases), f.Tail, f.Other, s
	w.rebase()
	return nil
}

func (w *leaseWorker) rebase() {
	w.want = copySet(w.local)
	for _, l := range w.peer {
		w.want.Apply(leases.Event{Op: leases.Renew, Lease: l})
	}
	w.dirty = !sameLeases(w.want, w.local)
}

// write puts want into the file (replaceFile; the owner is not kept:
// dnsmasq opens the file before it drops root).
func (w *leaseWorker) write(now time.Time) error {
	if sameLeases(w.want, w.local) {
		w.dirty = false
		return nil
	}
	f := leases.File{Leases: make([]leases.Lease, 0, len(w.want)), Other: w.other, Tail: w.tail}
	for _, l := range w.want {
		f.Leases = append(f.Leases, l)
	}
	if err := replaceFile(w.file, f.Append(nil)); err != nil {
		return err
	}
	w.local, w.dirty = copySet(w.want), false
	if fi, err := os.Stat(w.file); err == nil {
		w.stamp = stampOf(fi)
	}
	w.mu.Lock()
	w.st.Written++
	w.st.LastWrite = now
	w.mu.Unlock()
	return nil
}

// refuseLease says why a lease event of the peer is not taken, or "".
func refuseLease(ev *leases.Event, nets []netip.Prefix, now time.Time) string {
	l := &ev.Lease
	in := false
	for _, p := range nets {
		if p.Contains(l.Addr) {
			in = true
			break
		}
	}
	if !in {
		return "address"
	}
	if l.Expiry != 0 && (l.Expiry < minLeaseExpiry || int64(l.Expiry) > now.Unix()+maxLeaseAhead) {
		return "expiry"
	}
	return ""
}

func (w *leaseWorker) refuse(reason string) {
	w.mu.Lock()
	if w.st.Refused == nil {
		w.st.Refused = map[string]uint64{}
	}
	w.st.Refused[reason]++
	w.mu.Unlock()
}

func (w *leaseWorker) publish(v leaseView, errText string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.st.Enabled, w.st.File, w.st.Error = v.on, v.file, errText
	w.st.Local, w.st.Peer = len(w.local), len(w.peer)
}

// status is sync.leases: the worker's, with the engine's counters.
func (w *leaseWorker) status(eng leaseEngine) LeaseStatus {
	w.mu.Lock()
	s := w.st
	s.Refused = map[string]uint64{}
	for k, n := range w.st.Refused {
		s.Refused[k] = n
	}
	w.mu.Unlock()
	if eng != nil && s.Enabled {
		c := eng.LeaseStatus()
		s.Sent, s.Received = c.Sent, c.Received
		for k, n := range c.Refused {
			s.Refused[k] += n
		}
	}
	return s
}

func copySet(s leases.Set) leases.Set {
	c := make(leases.Set, len(s))
	for k, v := range s {
		c[k] = v
	}
	return c
}

func sameLeases(a, b leases.Set) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if o, ok := b[k]; !ok || o != v {
			return false
		}
	}
	return true
}
