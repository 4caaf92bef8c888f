package ctsync

// Kernel writes: the peer's flows injected into our kernel, and deleted
// from it, by a goroutine of their own (applier), so that a slow kernel
// holds up neither the acknowledgements nor the rest of the engine. The
// engine queues one applyJob per frame (or purge) in order, the applier
// writes them in that order, and tells the engine by message what it
// must know: which flows an entry of ours kept out (flow.ErrLocalClash),
// and, while Kernel.Inject runs, whether an entry in a flow's way came
// from the peer (Engine.injected, which reads the peer table).

import (
	"context"
	"errors"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// applyQueueLen bounds the jobs waiting for the kernel: one per frame,
// so about as many frames' worth of flows as the receive queue holds. A
// full queue makes the engine wait (still answering the applier).
const applyQueueLen = 256

// applyJob is one batch of kernel writes: flows to inject, then keys to
// delete.
type applyJob struct {
	inject []flow.Flow
	refs   []sentRec // the peer table slot and id of each flow of inject
	// displaced: the reply tuples, by key, of the peer's flows that a NEW
	// of this batch replaced in the peer table (Engine.injected).
	displaced map[ckey]flow.Tuple
	del       []flow.Key
	// delErr, if set, is told of a Delete's failure (on the applier
	// goroutine: it may only count and log).
	delErr func(error)
	// done, if set, is closed once the job is written (waitApplied).
	done chan struct{}
	news int // flows of inject new to the kernel (Engine.unapplied)
}

func (j *applyJob) add(f flow.Flow, ref sentRec) {
	j.inject = append(j.inject, f)
	j.refs = append(j.refs, ref)
}

func (j *applyJob) displace(k ckey, reply flow.Tuple) {
	if j.displaced == nil {
		j.displaced = map[ckey]flow.Tuple{}
	}
	j.displaced[k] = reply
}

// injectedQuery asks the engine goroutine whether x came from the peer.
type injectedQuery struct {
	x   *flow.Flow
	ans chan bool
}

// apply queues job for the applier. It waits while the queue is full,
// answering the applier's questions meanwhile (it may be asking).
func (e *Engine) apply(ctx context.Context, job applyJob) {
	e.unapplied.Add(int64(job.news)) // before the applier may take it
	for {
		select {
		case e.applyq <- job:
			return
		case q := <-e.queries:
			q.ans <- e.injected(q.x)
		case clashed := <-e.clashes:
			e.keptOut(clashed)
		case <-ctx.Done():
			e.unapplied.Add(-int64(job.news))
			return
		}
	}
}

// applier writes the queued jobs to the kernel until stop is closed.
func (e *Engine) applier(ctx context.Context) {
	defer e.wg.Done()
	for {
		select {
		case j := <-e.applyq:
			e.write(ctx, &j)
		case <-e.stop:
			return
		}
	}
}

// write runs one job on the applier goroutine.
func (e *Engine) write(ctx context.Context, j *applyJob) {
	if len(j.inject) > 0 {
		var clashed []sentRec
		for i, err := range e.k.Inject(ctx, j.inject, func(x *flow.Flow) bool { return e.askInjected(j, x) }) {
			switch {
			case err == nil:
			case errors.Is(err, flow.ErrLocalClash):
				e.count(func(c *Counters) { c.RefusedClash++ })
				clashed = append(clashed, j.refs[i])
			default:
				e.count(func(c *Counters) { c.ApplyErrors++ })
				e.log.Debug("injecting a flow", "err", err)
			}
		}
		if len(clashed) > 0 {
			select {
			case e.clashes <- clashed:
			case <-e.stop:
			}
		}
	}
	if len(j.del) > 0 {
		if err := e.k.Delete(ctx, j.del); err != nil && j.delErr != nil {
			j.delErr(err)
		}
	}
	e.unapplied.Add(-int64(j.news))
	if j.done != nil {
		close(j.done)
	}
}

// waitApplied returns once every job queued so far is in the kernel
// (answering the applier meanwhile): a dump taken then sees every flow
// of the peer we received.
func (e *Engine) waitApplied(ctx context.Context) {
	done := make(chan struct{})
	e.apply(ctx, applyJob{done: done})
	for {
		select {
		case <-done:
			return
		case q := <-e.queries:
			q.ans <- e.injected(q.x)
		case clashed := <-e.clashes:
			e.keptOut(clashed)
		case <-ctx.Done():
			return
		}
	}
}

// askInjected is Engine.injected for the applier: the job's displaced
// entries first, then the peer table, asked of the engine goroutine.
func (e *Engine) askInjected(j *applyJob, x *flow.Flow) bool {
	if r, ok := j.displaced[keyOf(x.Key())]; ok && r == x.Reply {
		return true
	}
	q := injectedQuery{x: x, ans: make(chan bool, 1)}
	select {
	case e.queries <- q:
	case <-e.stop:
		return false
	}
	select {
	case ok := <-q.ans:
		return ok
	case <-e.stop:
		return false
	}
}

// keptOut marks the peer's flows an entry of ours kept out of the kernel
// (flow.ErrLocalClash): ours stays; so does the peer's in our table, out
// of the kernel, so that its DELETE leaves ours alone.
func (e *Engine) keptOut(clashed []sentRec) {
	for _, r := range clashed {
		if p := e.peer.get(r.slot); p != nil && p.m.id == r.id {
			p.m.out = true
		}
	}
}

func (e *Engine) countApplyError(error) {
	e.count(func(c *Counters) { c.ApplyErrors++ })
}
