package daemon

// Maintenance that confirms: `carpd maintenance on --wait[=SECONDS]` and
// ubus `maintenance {enable, wait}` turn maintenance mode on as before and
// then wait until the handover is done: every vhid running here is BACKUP
// and hears a master (the peer took them all), and, with state sync, the
// engine has nothing the peer has not acknowledged (flows_synced =
// flows_local, nothing pending or queued) with the peer up. Or they fail
// after the timeout with what is missing. `off --wait` waits until every
// vhid is settled again (MASTER, or BACKUP hearing a master) and the sync
// engine has the peer's table.
//
// The wait never holds the loop: it runs on a goroutine of its own that
// asks the loop (do) every maintPoll, and status shows its progress
// (maintenance_wait), so a client that cannot wait that long (ubus callers
// give up after 30 s) follows it there.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/carp"
)

const (
	// DefaultMaintenanceWait is `--wait` without a value.
	DefaultMaintenanceWait = 60
	// MaxMaintenanceWait bounds the wait (seconds).
	MaxMaintenanceWait = 3600
	// maintPoll: how often the wait looks.
	maintPoll = 250 * time.Millisecond
)

// Maintenance wait states (status maintenance_wait.state).
const (
	MaintWaiting = "waiting"
	MaintDone    = "done"
	MaintFailed  = "failed"
)

// MaintenanceWaitStatus is status maintenance_wait: the last wait, while
// it runs and after, until maintenance mode is changed again.
type MaintenanceWaitStatus struct {
	Since  time.Time `json:"since"`
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
}

// MaintenanceWaitResult answers a maintenance request with a wait.
type MaintenanceWaitResult struct {
	MaintenanceResult
	Wait *MaintenanceWaitStatus `json:"wait,omitempty"`
}

// MaintenanceWaitError is the error of a wait that failed: Result says
// what was done (maintenance mode changed) and why the wait failed.
type MaintenanceWaitError struct{ Result MaintenanceWaitResult }

func (e *MaintenanceWaitError) Error() string {
	mode := "off"
	if e.Result.Maintenance {
		mode = "on"
	}
	return fmt.Sprintf("maintenance mode is %s, but the handover is not confirmed: %s", mode, e.Result.Wait.Reason)
}

// maintWait is the loop's record of the last wait.
type maintWait struct {
	st  *MaintenanceWaitStatus
	gen int
}

// maintenanceRequest carries out a maintenance request: the mode, then,
// with wait > 0 (seconds), the wait. ctx bounds how long the caller waits;
// the wait itself goes on (status maintenance_wait) until it ends.
func (d *Daemon) maintenanceRequest(ctx context.Context, enable bool, wait int) (any, error) {
	if wait < 0 || wait > MaxMaintenanceWait {
		return nil, fmt.Errorf("%w: wait must be 0 to %d seconds", ErrInvalidArgument, MaxMaintenanceWait)
	}
	res, err := d.Maintenance(enable)
	if err != nil {
		return nil, err
	}
	if wait == 0 {
		_ = d.do(func() { d.mwait.st = nil; d.mwait.gen++ })
		return res, nil
	}
	// Answer a caller with a deadline (ubus: 30 s) before it gives up.
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-time.Second))
		defer cancel()
	}
	done := make(chan MaintenanceWaitStatus, 1)
	var gen int
	if err := d.do(func() {
		d.mwait.gen++
		gen = d.mwait.gen
		d.mwait.st = &MaintenanceWaitStatus{Since: d.now(), State: MaintWaiting, Reason: "starting"}
		d.bg.Add(1)
	}); err != nil {
		return nil, err
	}
	go func() {
		defer d.bg.Done()
		done <- d.waitHandover(enable, gen, time.Duration(wait)*time.Second)
	}()
	out := MaintenanceWaitResult{MaintenanceResult: res}
	select {
	case st := <-done:
		out.Wait = &st
	case <-ctx.Done():
		st := MaintenanceWaitStatus{State: MaintWaiting, Reason: "the caller stopped waiting; see status maintenance_wait"}
		_ = d.do(func() {
			if d.mwait.gen == gen && d.mwait.st != nil {
				st = *d.mwait.st
			}
		})
		out.Wait = &st
		return out, nil
	}
	if out.Wait.State == MaintFailed {
		return nil, &MaintenanceWaitError{Result: out}
	}
	return out, nil
}

// waitHandover polls the loop until the handover is confirmed, the wait
// times out, it is superseded by a newer request, or the daemon stops.
func (d *Daemon) waitHandover(enable bool, gen int, wait time.Duration) MaintenanceWaitStatus {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(maintPoll)
	defer tick.Stop()
	var last MaintenanceWaitStatus
	for timedOut := false; ; {
		var ok, superseded bool
		if err := d.do(func() {
			if d.mwait.gen != gen || d.mwait.st == nil {
				superseded = true
				return
			}
			st := d.mwait.st
			var reason string
			ok, reason = d.handoverDone(enable)
			switch {
			case ok:
				st.State, st.Reason = MaintDone, ""
				d.log.Info("maintenance: handover confirmed", "enabled", enable, "after", d.now().Sub(st.Since).Round(time.Millisecond))
			case timedOut:
				st.State, st.Reason = MaintFailed, fmt.Sprintf("not confirmed after %v: %s", wait, reason)
				d.log.Warn("maintenance: handover not confirmed", "enabled", enable, "reason", st.Reason)
			default:
				st.Reason = reason
			}
			last = *st
		}); err != nil {
			return MaintenanceWaitStatus{State: MaintFailed, Reason: err.Error()}
		}
		if superseded {
			return MaintenanceWaitStatus{State: MaintFailed, Reason: "superseded by another maintenance request"}
		}
		if last.State != MaintWaiting {
			return last
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			timedOut = true
		case <-d.bgCtx.Done():
			return MaintenanceWaitStatus{State: MaintFailed, Reason: errStopping.Error()}
		}
	}
}

// handoverDone reports whether the handover is confirmed and, if not,
// what is missing. On the loop.
func (d *Daemon) handoverDone(enable bool) (bool, string) {
	if d.maint != enable {
		return false, "maintenance mode was changed meanwhile"
	}
	now := d.now()
	var missing []string
	running, ready := 0, 0
	for _, ve := range d.vhosts {
		if ve.v == nil {
			continue // not running here: nothing to hand over
		}
		running++
		st := ve.v.Status()
		heard := st.MasterSeen != nil && now.Sub(*st.MasterSeen) < ve.vc.Params.MasterDown()
		name := fmt.Sprintf("%s vhid %d", st.Interface, st.VHID)
		switch {
		case st.State == carp.Backup.String() && heard:
			ready++
		case !enable && st.State == carp.Master.String():
			ready++
		case st.State == carp.Backup.String():
			missing = append(missing, name+" hears no master")
		default:
			missing = append(missing, name+" is "+st.State)
		}
	}
	if len(missing) > 0 {
		sortStrings(missing)
		what := "taken over by the peer"
		if !enable {
			what = "settled"
		}
		return false, fmt.Sprintf("%d of %d vhids %s; %s", ready, running, what, strings.Join(missing, ", "))
	}
	if d.cfg.Sync.Enabled {
		if err := d.syncConfirmed(enable); err != nil {
			return false, err.Error()
		}
	}
	return true, ""
}

// syncConfirmed: with maintenance on, the peer acknowledged every flow we
// replicate; off, we have the peer's table.
func (d *Daemon) syncConfirmed(enable bool) error {
	if d.sync == nil {
		if d.syncErr != nil {
			return fmt.Errorf("state sync is not running: %v", d.syncErr)
		}
		return errors.New("state sync is not running")
	}
	s := d.sync.engine.Status()
	switch {
	case !s.PeerUp:
		return errors.New("the sync peer is not up")
	case !enable && !s.Bulk.Synced:
		return errors.New("the peer's connection table is not in yet")
	case enable && (s.FlowsSynced < s.FlowsLocal || s.FlowsPending > 0 || s.Bulk.Queued > 0):
		return fmt.Errorf("sync: %d of %d flows acknowledged by the peer", s.FlowsSynced, s.FlowsLocal)
	}
	return nil
}

// maintenanceWaitStatus fills in status maintenance_wait.
func (d *Daemon) maintenanceWaitStatus(s *Status) {
	if d.mwait.st != nil {
		st := *d.mwait.st
		s.MaintenanceWait = &st
	}
}

// sortStrings sorts a short list by hand: sort.Strings would link
// sort.Sort's interface pdqsort, 7 KB of mips code carpd has nowhere else.
func sortStrings(l []string) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j] < l[j-1]; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}
