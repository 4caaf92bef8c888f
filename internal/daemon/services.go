package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/openwrt"
	"github.com/carpd/carpd/ubus/json"
)

// Service roles (docs/services.md): a `config service` section follows
// the CARP state of its vhids. The loop decides the role (master while
// every listed vhid is MASTER, backup otherwise, unknown until one of them
// has left INIT); each service has a worker goroutine of its own that runs
// the role's action, one at a time and in order, bounded by the timeout,
// so neither the loop nor a vhost ever waits for a service.
//
// The worker is given the role to reach, not a list of changes: a flap
// that returns to the role whose action ran (or runs) before the worker
// looks again runs nothing more, and of several changes only the last
// counts. A master action waits for the VIPs of its vhids to be on the
// interface (vipGate), at most serviceVIPWait.

// Roles as status shows them.
const (
	roleMaster  = "master"
	roleBackup  = "backup"
	roleUnknown = "unknown"
)

// serviceVIPWait bounds how long a master action waits for the VIPs: more
// than the vhost's own bound of adding them (vipTimeout in package carp).
const serviceVIPWait = 5 * time.Second

// serviceStopWait bounds how long Run waits, when carpd stops, for the
// actions still to run (the backup actions of the bow-out) besides their
// own timeouts.
const serviceStopWait = serviceVIPWait + time.Second

// ServiceStatus is one service in status and, after each action, the
// carp.service ubus event (docs/ubus.md).
type ServiceStatus struct {
	Name    string   `json:"name"`
	Service string   `json:"service"`
	Backend string   `json:"backend"`
	VHIDs   []string `json:"vhids"`
	Role    string   `json:"role"`
	// Action, Result, Error and Time are of the last action run (or
	// running); absent before the first.
	Action string    `json:"action,omitempty"`
	Result string    `json:"result,omitempty"`
	Error  string    `json:"error,omitempty"`
	Time   time.Time `json:"time,omitzero"`
}

// serviceWant is what a worker is to reach: the role's action under a
// configuration. gen changes when the configuration does, so a changed
// service runs its role's action again (reconcile on reload).
type serviceWant struct {
	role  string
	gen   int
	cfg   config.Service
	vhids []string
	gates []*vipGate // the gates of the vhids (master: all MASTER)
}

// serviceEntry is one service: the loop's part (cfg, role, gen) and the
// worker's, under mu.
type serviceEntry struct {
	cfg  config.Service
	role string // the role decided last; "" before the first decision
	gen  int

	mu      sync.Mutex // guards the fields below
	cond    *sync.Cond // signalled on a new want and on quit
	want    serviceWant
	ranRole string // the role (and gen) whose action ran last or runs
	ranGen  int
	quit    bool // run what is wanted, then stop
	last    ServiceStatus
	stopped chan struct{}
	// after, when set, is the stopped channel of a removed service of the
	// same name whose worker may still run an action: this worker waits
	// for it, so the two never run actions on the unit at once.
	after chan struct{}
}

// applyServices makes the services match cfg (on the loop): new ones
// start, changed ones run their role's action again, removed ones are
// left as they are (their worker ends after the action it runs).
func (d *Daemon) applyServices(cfg *config.Config) {
	var next []*serviceEntry
	retiring := d.retiring[:0]
	for _, se := range d.retiring {
		select {
		case <-se.stopped:
		default:
			retiring = append(retiring, se)
		}
	}
	for _, sc := range cfg.Services {
		se := d.service(sc.Name)
		switch {
		case se == nil:
			se = &serviceEntry{cfg: sc, stopped: make(chan struct{})}
			se.cond = sync.NewCond(&se.mu)
			for _, old := range retiring {
				if old.cfg.Name == sc.Name {
					se.after = old.stopped // the newest removed one waits for any older
				}
			}
			d.bg.Add(1)
			go func() {
				defer d.bg.Done()
				d.serviceWorker(se)
			}()
		case !sameService(se.cfg, sc):
			se.cfg, se.role = sc, ""
			se.gen++
		}
		next = append(next, se)
	}
	for _, se := range d.services {
		if !containsEntry(next, se) {
			se.mu.Lock()
			se.want.role, se.want.gen, se.quit = se.ranRole, se.ranGen, true
			se.cond.Signal()
			se.mu.Unlock()
			retiring = append(retiring, se)
		}
	}
	d.services, d.retiring = next, retiring
	d.updateServices()
}

func (d *Daemon) service(name string) *serviceEntry {
	for _, se := range d.services {
		if se.cfg.Name == name {
			return se
		}
	}
	return nil
}

func containsEntry(list []*serviceEntry, se *serviceEntry) bool {
	for _, x := range list {
		if x == se {
			return true
		}
	}
	return false
}

// sameService compares two configurations of a service (fmt, not a
// field-by-field function: the binary is tight, docs/size-budget.md).
func sameService(a, b config.Service) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// serviceVHIDs returns the vhid section names a service follows.
func (d *Daemon) serviceVHIDs(sc *config.Service) []string {
	if len(sc.VHIDs) > 0 {
		return sc.VHIDs
	}
	names := make([]string, 0, len(d.cfg.VHIDs))
	for i := range d.cfg.VHIDs {
		names = append(names, d.cfg.VHIDs[i].Name)
	}
	return names
}

// updateServices decides every service's role from its vhids' states (on
// the loop, after each transition and reload) and hands a changed role
// to the service's worker.
func (d *Daemon) updateServices() {
	for _, se := range d.services {
		role, decided := roleMaster, false
		// gates: a master action waits for every vhid's VIPs to be added
		// (through its master nodes, for a balanced section), a backup
		// action only for those of the vhids that left MASTER (the others
		// keep theirs).
		var gates, left []*vipGate
		names := d.serviceVHIDs(&se.cfg)
		for _, name := range names {
			// A balanced section has a vhost per node: it is MASTER (holds
			// the VIPs) while any node is.
			state := carp.Init.String()
			ves := d.vhostsByName(name)
			for _, ve := range ves {
				if ve.v == nil {
					continue
				}
				switch st := ve.v.Status().State; {
				case st == carp.Master.String():
					state = st
				case state == carp.Init.String():
					state = st
				}
			}
			if state != carp.Init.String() {
				decided = true
			}
			if state != carp.Master.String() {
				role = roleBackup
			}
			for _, ve := range ves {
				switch {
				case state != carp.Master.String():
					left = append(left, ve.gate) // every node's VIPs go
				case ve.v != nil && ve.v.Status().State == carp.Master.String():
					gates = append(gates, ve.gate) // a master node adds them
				}
			}
		}
		if role == roleBackup {
			gates = left
		}
		if len(names) == 0 {
			role = roleBackup
		}
		if !decided && se.role == "" || role == se.role {
			continue
		}
		d.log.Info("service role", "service", se.cfg.Name, "was", roleName(se.role), "now", role)
		se.role = role
		se.mu.Lock()
		se.want = serviceWant{role: role, gen: se.gen, cfg: se.cfg, vhids: names, gates: gates}
		se.cond.Signal()
		se.mu.Unlock()
	}
}

func roleName(r string) string {
	if r == "" {
		return roleUnknown
	}
	return r
}

// vhostsByName returns the vhosts of a vhid section: one, or a balanced
// section's nodes.
func (d *Daemon) vhostsByName(name string) []*vhostEntry {
	var out []*vhostEntry
	for _, ve := range d.vhosts {
		if ve.cfg.Name == name {
			out = append(out, ve)
		}
	}
	return out
}

// serviceWorker runs a service's actions until it is told to quit and
// has nothing left to run.
func (d *Daemon) serviceWorker(se *serviceEntry) {
	defer close(se.stopped)
	if se.after != nil {
		<-se.after // bounded by that action's timeout
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	for {
		w := se.want
		if w.role == se.ranRole && w.gen == se.ranGen {
			if se.quit {
				return
			}
			se.cond.Wait()
			continue
		}
		se.mu.Unlock()
		if w.role == roleMaster {
			d.waitVIPs(w, (*vipGate).added)
		} else {
			d.waitVIPs(w, (*vipGate).removed)
		}
		se.mu.Lock()
		if se.want.role != w.role || se.want.gen != w.gen {
			continue // changed while waiting: the newest counts
		}
		se.ranRole, se.ranGen = w.role, w.gen
		action := w.cfg.Backup
		if w.role == roleMaster {
			action = w.cfg.Master
		}
		if action == config.ActionNone {
			continue
		}
		start := time.Now()
		se.last = ServiceStatus{Backend: se.last.Backend, Action: action, Result: "running", Time: start}
		se.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
		backend, err := d.env.RunService(ctx, w.cfg, action)
		cancel()
		ev := ServiceStatus{Name: w.cfg.Name, Service: w.cfg.Unit, Backend: backend, VHIDs: w.vhids, Role: w.role,
			Action: action, Result: "ok", Time: time.Now()}
		if err != nil {
			ev.Result, ev.Error = "failed", err.Error()
			d.log.Warn("service action failed", "service", w.cfg.Name, "action", action, "backend", backend, "err", err)
		} else {
			d.log.Info("service action", "service", w.cfg.Name, "action", action, "backend", backend, "took", time.Since(start))
		}
		if d.ubus != nil {
			d.ubus.q.Push(ubusEvent{"carp.service", ev})
		}
		se.mu.Lock()
		se.last = ev
	}
}

// waitVIPs waits until every gate's VIPs are on their interface (added)
// or off it (removed), at most serviceVIPWait.
func (d *Daemon) waitVIPs(w serviceWant, done func(*vipGate) <-chan struct{}) {
	t := time.NewTimer(serviceVIPWait)
	defer t.Stop()
	for _, g := range w.gates {
		select {
		case <-done(g):
		case <-t.C:
			d.log.Warn("service: VIPs not in place in time; running the action anyway", "service", w.cfg.Name, "role", w.role)
			return
		}
	}
}

// stopServices lets each worker run what it still has to (the backup
// actions of the bow-out), then waits for them, at most each one's
// timeout and serviceStopWait.
func (d *Daemon) stopServices() {
	var wait time.Duration
	for _, se := range d.services {
		se.mu.Lock()
		se.quit = true
		se.cond.Signal()
		wait = max(wait, se.cfg.Timeout)
		se.mu.Unlock()
	}
	t := time.NewTimer(wait + serviceStopWait)
	defer t.Stop()
	for _, se := range d.services {
		select {
		case <-se.stopped:
		case <-t.C:
			d.log.Warn("service actions still running as carpd stops", "service", se.cfg.Name)
			return
		}
	}
}

// serviceStatus is the services part of status (on the loop).
func (d *Daemon) serviceStatus() []ServiceStatus {
	out := []ServiceStatus{}
	for _, se := range d.services {
		se.mu.Lock()
		st := se.last
		se.mu.Unlock()
		st.Name, st.Service, st.VHIDs, st.Role = se.cfg.Name, se.cfg.Unit, d.serviceVHIDs(&se.cfg), roleName(se.role)
		if st.Backend == "" {
			st.Backend = se.cfg.Backend
		}
		out = append(out, st)
	}
	return out
}

// vipGate is a vhost's address manager that knows whether the VIPs are
// on the interface: a master action waits for them (services.go).
type vipGate struct {
	Addresses
	mu sync.Mutex    // guards up, on, ch and rm
	up bool          // the last call was Add
	on bool          // VIPs may be on the interface: from Add until a Remove returned
	ch chan struct{} // closed by the next Add; nil when nobody waits
	rm chan struct{} // closed when the next Remove returns; nil when nobody waits
}

func (g *vipGate) Add(ctx context.Context, p []netip.Prefix) error {
	g.mu.Lock()
	g.on = true
	g.mu.Unlock()
	err := g.Addresses.Add(ctx, p)
	g.mu.Lock()
	g.up = true
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
	g.mu.Unlock()
	return err
}

func (g *vipGate) Remove(ctx context.Context, p []netip.Prefix) error {
	g.mu.Lock()
	g.up = false
	g.mu.Unlock()
	err := g.Addresses.Remove(ctx, p)
	g.mu.Lock()
	if !g.up {
		g.on = false
		if g.rm != nil {
			close(g.rm)
			g.rm = nil
		}
	}
	g.mu.Unlock()
	return err
}

// removed returns a channel that is closed once the VIPs are off the
// interface (at once when they are, or were never added).
func (g *vipGate) removed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.on {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if g.rm == nil {
		g.rm = make(chan struct{})
	}
	return g.rm
}

// added returns a channel that is closed once the VIPs are added.
func (g *vipGate) added() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch == nil {
		g.ch = make(chan struct{})
		if g.up {
			close(g.ch)
			ch := g.ch
			g.ch = nil
			return ch
		}
	}
	return g.ch
}

// runService runs one action through the service's backend (Env.RunService
// when the test sets none): rpcd's rc object over ubus, the init script,
// or systemctl. It returns the backend used.
func (d *Daemon) runService(ctx context.Context, s config.Service, action string) (string, error) {
	backend := s.Backend
	if backend == config.BackendAuto {
		backend = config.BackendSystemd
		if _, err := os.Stat(s.Script()); err == nil {
			backend = config.BackendInitd
			if s.InitScript == "" && d.hasRC(ctx) {
				backend = config.BackendRC
			}
		}
	}
	var argv []string
	switch backend {
	case config.BackendRC:
		if d.ubus == nil {
			return backend, errors.New("no ubus (ubus_socket is empty)")
		}
		// The unit name is checked (config.ValidUnit): nothing to quote.
		_, err := d.ubus.cl.Call(ctx, "rc", "init", json.RawMessage(`{"name":"`+s.Unit+`","action":"`+action+`"}`))
		return backend, err
	case config.BackendInitd:
		argv = []string{s.Script(), action}
	default:
		argv = []string{"/usr/bin/systemctl", action, s.Unit}
		if _, err := os.Stat(argv[0]); err != nil {
			argv[0] = "/bin/systemctl"
		}
	}
	out, err := openwrt.RunProgram(ctx, argv)
	if err != nil {
		if o := strings.TrimSpace(string(out)); o != "" {
			if len(o) > 200 {
				o = o[len(o)-200:]
			}
			err = errors.New(err.Error() + ": " + o)
		}
		if ctx.Err() != nil {
			err = errors.New("timed out, killed: " + err.Error())
		}
	}
	return backend, err
}

// hasRC reports whether ubusd has rpcd's rc object.
func (d *Daemon) hasRC(ctx context.Context) bool {
	if d.ubus == nil {
		return false
	}
	c := d.ubus.cl.Conn()
	if c == nil {
		return false
	}
	objs, err := c.Lookup(ctx, "rc")
	return err == nil && len(objs) > 0
}
