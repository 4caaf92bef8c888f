package daemon

// Configuration sync (docs/config-sync.md): the primary watches its
// listed UCI packages and files and sends each whole when it changes;
// the secondary checks what comes in against its own list and rules,
// writes it atomically and runs its reload command once per batch. The
// pure parts (chunks, the conflict rule, the diff) are internal/cfgsync.
//
// One goroutine (run) does the watching, sending and writing; its state
// is under cfgSyncer.mu, which config_sync requests take too. Status
// reads a snapshot published after every step, so the daemon's loop
// never waits for a file write.

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/cfgsync"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/internal/ctsync/wire"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/openwrt"
)

const (
	cfgPoll    = time.Second      // files are looked at this often
	cfgReport  = 10 * time.Second // the secondary's hashes go to the primary this often
	cfgResend  = 5 * time.Second  // an unanswered object goes again after this (plus its time on the link)
	cfgInQueue = 1024             // records from the engine waiting for the goroutine
	cfgReload  = 30 * time.Second // bounds one run of the reload command
)

// ConfigSyncStatus is sync.config in status.
type ConfigSyncStatus struct {
	Role     string               `json:"role"`
	Packages []ConfigObjectStatus `json:"packages"`
	Refused  map[string]uint64    `json:"refused"`
}

// ConfigObjectStatus is one synced package or file.
type ConfigObjectStatus struct {
	_ [0]func() // not comparable: no equality function linked (0.5 KB on MIPS)

	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	LocalHash string    `json:"local_hash,omitempty"`
	PeerHash  string    `json:"peer_hash,omitempty"`
	LastSync  time.Time `json:"last_sync,omitzero"`
	Conflict  string    `json:"conflict,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// ConfigSyncResult answers config_sync.
type ConfigSyncResult struct {
	Role string `json:"role"`
	// Diff: what would change (dry_run), unified-style.
	Diff string `json:"diff,omitempty"`
	// Written: the objects a forced sync wrote here (secondary); Sent:
	// those it sends again, forced (primary).
	Written []string `json:"written,omitempty"`
	Sent    []string `json:"sent,omitempty"`
	// Conflicts: objects whose update is held for a local edit.
	Conflicts []string `json:"conflicts,omitempty"`
}

type cfgSyncer struct {
	log  *logx.Logger
	in   chan *wire.Record
	kick chan struct{}
	// dropped: records the queue had no room for.
	dropped atomic.Uint64

	// smu guards eng, pub and next, which the daemon's loop sets or
	// reads: it never waits for mu, held over file writes. (Plain
	// pointers: an atomic.Pointer[ctsync.Engine] would link the methods
	// of every type of the engine's configuration, 6 KB on MIPS.)
	smu sync.Mutex
	eng *ctsync.Engine
	pub *ConfigSyncStatus
	// next: a configuration from a reload, for run to take.
	next *cfgConf

	mu        sync.Mutex
	cfg       config.ConfigSync
	bandwidth uint64
	statePath string
	objs      []*cfgObj // by name
	refused   map[string]uint64
	last      map[string]cfgsync.Hash // secondary: what it last wrote or found the same (persisted)
	asm       cfgsync.Assembler
	peerUp    bool
	reported  time.Time
	reload    []string // written since the last reload
}

type cfgConf struct {
	cs config.ConfigSync
	sc config.Sync
}

type cfgObj struct {
	name, path string
	file       bool
	mtime      time.Time
	size       int64
	seen       bool // mtime and size are of a file read
	local      cfgsync.Hash
	data       []byte // primary: the content
	err        string
	// The primary's: the version the peer has (answered), the one last
	// sent and when, the content acked (for --dry-run), forced.
	acked, sent cfgsync.Hash
	sentAt      time.Time
	ackedData   []byte
	force       bool
	// peer: the peer's hash of it; heard (secondary): the primary's
	// version last received.
	peer, heard cfgsync.Hash
	lastSync    time.Time
	conflict    string
	held        *cfgsync.Object // secondary: an update kept for a conflict
}

func newCfgSyncer(log *logx.Logger, statePath string) *cfgSyncer {
	c := &cfgSyncer{log: log.With("op", "config-sync"), in: make(chan *wire.Record, cfgInQueue), kick: make(chan struct{}, 1),
		statePath: statePath + ".cfgsync", refused: map[string]uint64{}}
	c.last = loadCfgState(c.statePath)
	return c
}

// configure takes the configuration (at start and on reload).
func (c *cfgSyncer) configure(cs config.ConfigSync, sc config.Sync) {
	c.mu.Lock()
	if !sc.Enabled {
		cs.Role = ""
	}
	c.cfg, c.bandwidth = cs, sc.Bandwidth
	old := c.objs
	c.objs = nil
	if cs.Role != "" {
		for _, p := range cs.Packages {
			c.add(old, p, filepath.Join(cs.ConfigDir(), p), false)
		}
		for _, f := range cs.Files {
			c.add(old, f, f, true)
		}
	}
	c.publish()
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// setConfig hands a reload's configuration to run (from the daemon's
// loop: it never blocks).
func (c *cfgSyncer) setConfig(cs config.ConfigSync, sc config.Sync) {
	c.smu.Lock()
	c.next = &cfgConf{cs, sc}
	c.smu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// setEngine is the sync engine, or nil.
func (c *cfgSyncer) setEngine(e *ctsync.Engine) {
	c.smu.Lock()
	c.eng = e
	c.smu.Unlock()
}

func (c *cfgSyncer) engine() *ctsync.Engine {
	c.smu.Lock()
	e := c.eng
	c.smu.Unlock()
	return e
}

// fromEngine is the engine's Config.OnConfig: it never blocks.
func (c *cfgSyncer) fromEngine(r *wire.Record) {
	var keep *wire.Record // the decoder's is reused; what it points to is ours
	if r != nil {
		keep = &wire.Record{Type: r.Type, Config: r.Config, ConfigAck: r.ConfigAck}
	}
	select {
	case c.in <- keep:
	default:
		c.dropped.Add(1)
	}
}

// run watches and answers until ctx ends.
func (c *cfgSyncer) run(ctx context.Context) {
	t := time.NewTicker(cfgPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
			c.smu.Lock()
			n := c.next
			c.next = nil
			c.smu.Unlock()
			if n != nil {
				c.configure(n.cs, n.sc)
			}
		case r := <-c.in:
			c.mu.Lock()
			c.record(r, time.Now())
			for more := true; more; {
				select {
				case r := <-c.in:
					c.record(r, time.Now())
				default:
					more = false
				}
			}
			c.publish()
			c.mu.Unlock()
			c.runReload(ctx)
			continue
		}
		c.mu.Lock()
		c.tick(time.Now())
		c.publish()
		c.mu.Unlock()
	}
}

// tick looks at the files, and sends what is due.
func (c *cfgSyncer) tick(now time.Time) {
	primary := c.cfg.Role == config.RolePrimary
	for _, o := range c.objs {
		c.scan(o, primary)
	}
	e := c.engine()
	up := e != nil && e.Status().PeerUp
	wasUp := c.peerUp
	c.peerUp = up
	if !up {
		return
	}
	switch c.cfg.Role {
	case config.RolePrimary:
		for _, o := range c.objs {
			if o.data == nil || o.local == o.acked {
				continue
			}
			wait := cfgResend
			if c.bandwidth > 0 {
				wait += 2 * time.Duration(len(o.data)) * time.Second / time.Duration(c.bandwidth)
			}
			if o.sent == o.local && now.Sub(o.sentAt) < wait {
				continue
			}
			if e.SendConfig(cfgsync.Chunks(o.name, o.file, o.force, o.data)) {
				o.sent, o.sentAt = o.local, now
			}
		}
	case config.RoleSecondary:
		if wasUp && now.Sub(c.reported) < cfgReport {
			return
		}
		c.reported = now
		var recs []wire.Record
		for _, o := range c.objs {
			recs = append(recs, wire.Record{Type: wire.RecordConfigAck, ConfigAck: &wire.ConfigAck{Name: o.name, Hash: o.heard, Local: o.local}})
		}
		e.SendConfig(recs)
	}
}

// add puts the object in c.objs, in name order, once (a few dozen at
// most: an insertion); one of old that is the same is kept, with its
// state.
func (c *cfgSyncer) add(old []*cfgObj, name, path string, file bool) {
	o := &cfgObj{name: name, path: path, file: file}
	for _, p := range old {
		if p.name == name && p.path == path && p.file == file {
			o = p
		}
	}
	j := len(c.objs)
	for j > 0 && c.objs[j-1].name > name {
		j--
	}
	if j > 0 && c.objs[j-1].name == name {
		return
	}
	c.objs = append(c.objs, nil)
	copy(c.objs[j+1:], c.objs[j:])
	c.objs[j] = o
}

// find is the object of that name, or nil.
func (c *cfgSyncer) find(name string) *cfgObj {
	for _, o := range c.objs {
		if o.name == name {
			return o
		}
	}
	return nil
}

// scan reads o again when its size or time changed (keep: the primary
// keeps the content, to send).
func (c *cfgSyncer) scan(o *cfgObj, keep bool) {
	st, err := os.Lstat(o.path)
	if err != nil {
		o.seen, o.local, o.data, o.err = false, cfgsync.Hash{}, nil, ""
		if keep {
			o.err = "missing here"
		}
		return
	}
	if o.seen && st.ModTime().Equal(o.mtime) && st.Size() == o.size {
		return
	}
	data, err := readObject(o.path, st)
	if err != nil {
		o.seen, o.local, o.data, o.err = false, cfgsync.Hash{}, nil, err.Error()
		return
	}
	o.seen, o.mtime, o.size, o.local, o.err = true, st.ModTime(), st.Size(), cfgsync.Sum(data), ""
	if keep {
		if !o.file {
			if _, err := openwrt.ParseUCI(o.name, data); err != nil {
				o.local, o.err = cfgsync.Hash{}, "not sent: "+err.Error()
				return
			}
		}
		o.data = data
	}
}

// readObject reads a regular file of at most cfgsync.MaxSize bytes.
func readObject(path string, st os.FileInfo) ([]byte, error) {
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file (symbolic links are not synced)")
	}
	if st.Size() > cfgsync.MaxSize {
		return nil, errors.New("larger than 256 KiB")
	}
	data, err := os.ReadFile(path)
	if err == nil && len(data) > cfgsync.MaxSize {
		err = errors.New("larger than 256 KiB")
	}
	if data == nil {
		data = []byte{}
	}
	return data, err
}

// record handles one record of the peer (nil: one that did not parse).
func (c *cfgSyncer) record(r *wire.Record, now time.Time) {
	switch {
	case r == nil:
		c.refused[cfgsync.ReasonMalformed]++
	case r.Type == wire.RecordConfigAck:
		c.answer(r.ConfigAck, now)
	case r.Type == wire.RecordConfig:
		ch := r.Config
		why, whole := c.admit(ch), false
		if why == "" {
			var obj *cfgsync.Object
			if obj, why = c.asm.Add(ch); obj != nil {
				why = c.received(obj, now)
			}
			whole = why != ""
		}
		if why != "" {
			c.refused[why]++
			c.log.Warn("configuration record refused", "name", ch.Name, "reason", why)
			// Answered once per object, not per chunk.
			if (whole || ch.Offset == 0) && why != cfgsync.ReasonMalformed {
				c.ack(ch.Name, ch.Hash, cfgsync.AckRefused, why, cfgsync.Hash{})
			}
		}
	}
}

// admit checks a chunk against this router's own list: the peer's names
// are never trusted beyond it.
func (c *cfgSyncer) admit(ch *wire.ConfigChunk) string {
	if c.cfg.Role != config.RoleSecondary {
		return cfgsync.ReasonRole
	}
	if ch.Total > cfgsync.MaxSize {
		return cfgsync.ReasonTooLarge
	}
	if ch.Flags&wire.ConfigFile == 0 && ch.Name == cfgsync.OwnPackage {
		return cfgsync.ReasonOwn
	}
	o := c.find(ch.Name)
	if o == nil || o.file != (ch.Flags&wire.ConfigFile != 0) {
		return cfgsync.ReasonNotListed
	}
	return ""
}

// received decides on a whole object: checked, then written, kept for a
// conflict, or found the same. It returns a refusal reason.
func (c *cfgSyncer) received(obj *cfgsync.Object, now time.Time) string {
	o := c.find(obj.Name)
	if !o.file {
		if _, err := openwrt.ParseUCI(o.name, obj.Data); err != nil {
			return cfgsync.ReasonUCI
		}
	}
	if st, err := os.Lstat(o.path); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return cfgsync.ReasonSymlink
	}
	o.heard, o.peer, o.seen = obj.Hash, obj.Hash, false
	c.scan(o, false) // read again: an edit of the same size within the clock's tick
	switch cfgsync.Decide(obj.Hash, o.local, c.last[o.name], obj.Force) {
	case cfgsync.Same:
		o.held, o.conflict, o.lastSync = nil, "", now
		c.remember(o.name, obj.Hash)
		c.ack(o.name, obj.Hash, cfgsync.AckSame, "", o.local)
	case cfgsync.Conflict:
		o.held, o.conflict = obj, "edited here since the last sync; kept (carpd config-sync --force takes the primary's)"
		c.log.Warn("configuration conflict: the local copy was edited since the last sync; kept", "name", o.name)
		c.ack(o.name, obj.Hash, cfgsync.AckConflict, "", o.local)
	case cfgsync.Write:
		if why := c.write(o, obj, now); why != "" {
			return why
		}
		c.ack(o.name, obj.Hash, cfgsync.AckWritten, "", o.local)
	}
	return ""
}

// write puts obj in place of o's file.
func (c *cfgSyncer) write(o *cfgObj, obj *cfgsync.Object, now time.Time) string {
	if err := replaceFile(o.path, obj.Data); err != nil {
		o.err = err.Error()
		c.log.Error("writing a synced object", "name", o.name, "err", err)
		return cfgsync.ReasonWrite
	}
	c.log.Info("written", "name", o.name, "bytes", len(obj.Data))
	o.held, o.conflict, o.err, o.lastSync, o.seen = nil, "", "", now, false
	c.scan(o, false)
	c.remember(o.name, obj.Hash)
	c.reload = append(c.reload, o.name)
	return ""
}

func (c *cfgSyncer) ack(name string, h cfgsync.Hash, status uint8, reason string, local cfgsync.Hash) {
	if e := c.engine(); e != nil {
		e.SendConfig([]wire.Record{{Type: wire.RecordConfigAck, ConfigAck: &wire.ConfigAck{Status: status,
			Reason: cfgsync.ReasonCode(reason), Name: name, Hash: h, Local: local}}})
	}
}

// answer takes in the secondary's answer or report (primary).
func (c *cfgSyncer) answer(a *wire.ConfigAck, now time.Time) {
	if c.cfg.Role != config.RolePrimary {
		c.refused[cfgsync.ReasonRole]++
		return
	}
	o := c.find(a.Name)
	if o == nil || o.file && a.Name != o.path {
		c.refused[cfgsync.ReasonNotListed]++
		return
	}
	o.peer = a.Local
	if a.Status == 0 {
		// A report: a secondary that never heard this version (it
		// restarted) gets it again.
		if a.Hash != o.local && a.Local != o.local {
			o.acked = cfgsync.Hash{}
		} else if a.Local == o.local {
			o.acked = o.local
		}
		return
	}
	if a.Hash != o.local {
		return // about an older version
	}
	o.acked, o.force = o.local, false
	switch a.Status {
	case cfgsync.AckWritten, cfgsync.AckSame:
		o.conflict, o.err, o.lastSync, o.ackedData = "", "", now, o.data
	case cfgsync.AckConflict:
		o.conflict = "the secondary's copy was edited since the last sync; it keeps it until carpd config-sync --force"
	default:
		o.err = "refused by the secondary: " + cfgsync.ReasonName(a.Reason)
	}
}

// remember records what the secondary last wrote or found the same.
func (c *cfgSyncer) remember(name string, h cfgsync.Hash) {
	if c.last[name] == h {
		return
	}
	c.last[name] = h
	var b []byte
	for n, h := range c.last {
		b = append(b, cfgsync.Hex(h)+" "+n+"\n"...)
	}
	if err := replaceFile(c.statePath, b); err != nil {
		c.log.Warn("config sync state not saved", "path", c.statePath, "err", err)
	}
}

func loadCfgState(path string) map[string]cfgsync.Hash {
	m := map[string]cfgsync.Hash{}
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		hx, name, ok := strings.Cut(l, " ")
		var h cfgsync.Hash
		if raw, err := hex.DecodeString(hx); ok && err == nil && len(raw) == len(h) {
			copy(h[:], raw)
			m[name] = h
		}
	}
	return m
}

// runReload runs the reload command once for what was written.
func (c *cfgSyncer) runReload(ctx context.Context) {
	c.mu.Lock()
	names, cmd := c.reload, c.cfg.Reload()
	c.reload = nil
	c.mu.Unlock()
	if len(names) == 0 || cmd == "" {
		return
	}
	if _, err := os.Stat(cmd); err != nil && cmd == config.DefaultReloadCommand {
		return // not OpenWrt: nothing to reload by default
	}
	err := config.CheckProgram(cmd)
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, cfgReload)
		var out []byte
		out, err = openwrt.RunProgram(rctx, append([]string{cmd}, names...))
		cancel()
		if err != nil {
			err = errors.New(err.Error() + ": " + string(out))
		}
	}
	if err != nil {
		c.log.Error("reload command failed", "command", cmd, "err", err)
	}
}

// request carries out config_sync: the diff of what would change
// (dryRun), or a forced sync.
func (c *cfgSyncer) request(ctx context.Context, dryRun, force bool) (ConfigSyncResult, error) {
	c.mu.Lock()
	res := ConfigSyncResult{Role: c.cfg.Role}
	if res.Role == "" {
		c.mu.Unlock()
		return res, errors.New("configuration sync is off (option config_role)")
	}
	if !dryRun && !force {
		c.mu.Unlock()
		return res, errors.New("config_sync needs dry_run or force")
	}
	now := time.Now()
	var diff strings.Builder
	for _, o := range c.objs {
		if o.conflict != "" {
			res.Conflicts = append(res.Conflicts, o.name)
		}
		switch {
		case res.Role == config.RolePrimary && dryRun:
			c.scan(o, true)
			if o.data == nil || o.local == o.peer {
				continue
			}
			var known []byte // what the secondary has, if known here
			if cfgsync.Sum(o.ackedData) == o.peer {
				known = o.ackedData
			}
			diff.WriteString(cfgsync.Diff(o.name+" (secondary "+cfgsync.Hex(o.peer)+")", o.name+" (here)", known, o.data))
		case res.Role == config.RolePrimary:
			if o.data != nil {
				o.force, o.acked, o.sent = true, cfgsync.Hash{}, cfgsync.Hash{}
				res.Sent = append(res.Sent, o.name)
			}
		case o.held == nil:
		case dryRun:
			cur, _ := os.ReadFile(o.path)
			diff.WriteString(cfgsync.Diff(o.name+" (here)", o.name+" (primary)", cur, o.held.Data))
		default:
			held := o.held
			if why := c.write(o, held, now); why != "" {
				c.refused[why]++
				continue
			}
			c.ack(o.name, held.Hash, cfgsync.AckWritten, "", o.local)
			res.Written = append(res.Written, o.name)
		}
	}
	res.Diff = diff.String()
	c.publish()
	c.mu.Unlock()
	c.runReload(ctx)
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return res, nil
}

// publish makes the status snapshot (under mu).
func (c *cfgSyncer) publish() {
	s := &ConfigSyncStatus{Role: c.cfg.Role, Packages: []ConfigObjectStatus{}, Refused: make(map[string]uint64, len(c.refused))}
	if s.Role == "" {
		s.Role = "none"
	}
	for k, v := range c.refused {
		s.Refused[k] = v
	}
	if n := c.dropped.Load(); n > 0 {
		s.Refused["queue_full"] = n
	}
	for _, o := range c.objs {
		kind := cfgsync.KindUCI
		if o.file {
			kind = cfgsync.KindFile
		}
		s.Packages = append(s.Packages, ConfigObjectStatus{Name: o.name, Kind: kind, LocalHash: cfgsync.Hex(o.local),
			PeerHash: cfgsync.Hex(o.peer), LastSync: o.lastSync, Conflict: o.conflict, Error: o.err})
	}
	c.smu.Lock()
	c.pub = s
	c.smu.Unlock()
}

// status is the last snapshot; nil when configuration sync is off.
func (c *cfgSyncer) status() *ConfigSyncStatus {
	if c == nil {
		return nil
	}
	c.smu.Lock()
	s := c.pub
	c.smu.Unlock()
	if s != nil && s.Role == "none" {
		s = nil
	}
	return s
}

// startConfigSync starts the configuration sync goroutine (Run).
func (d *Daemon) startConfigSync(ctx context.Context) {
	d.cfgs.configure(d.cfg.ConfigSync, d.cfg.Sync)
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		d.cfgs.run(ctx)
	}()
}
