package ctsynctest

import (
	"context"
	"sync"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// Kernel is an in-memory conntrack table. Its methods are safe for
// concurrent use. Inject replaces whatever is in a flow's way (it has no
// entries of its own to keep) and never calls injected.
type Kernel struct {
	// Gate, if set before the engine runs, holds every Inject until it
	// is closed (or the Inject's context is done): a slow kernel.
	Gate chan struct{}

	mu      sync.Mutex
	table   map[flow.Key]flow.Flow
	events  chan flow.Event
	applied int // flows passed to Inject
	held    int // Injects waiting at Gate
}

// NewKernel returns an empty table whose event channel holds 100 000
// events.
func NewKernel() *Kernel {
	return &Kernel{table: map[flow.Key]flow.Flow{}, events: make(chan flow.Event, 100000)}
}

// Each calls fn with a copy of every flow.
func (k *Kernel) Each(_ context.Context, fn func(*flow.Flow)) error {
	k.mu.Lock()
	out := make([]flow.Flow, 0, len(k.table))
	for _, f := range k.table {
		out = append(out, f)
	}
	k.mu.Unlock()
	for i := range out {
		fn(&out[i])
	}
	return nil
}

// Events is the event channel Put and Emit feed.
func (k *Kernel) Events() <-chan flow.Event { return k.events }

// Inject writes the flows (after Gate, if set).
func (k *Kernel) Inject(ctx context.Context, fs []flow.Flow, _ func(*flow.Flow) bool) []error {
	errs := make([]error, len(fs))
	if k.Gate != nil {
		k.mu.Lock()
		k.held++
		k.mu.Unlock()
		defer func() {
			k.mu.Lock()
			k.held--
			k.mu.Unlock()
		}()
		select {
		case <-k.Gate:
		case <-ctx.Done():
			for i := range errs {
				errs[i] = ctx.Err()
			}
			return errs
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, f := range fs {
		k.table[f.Key()] = f
	}
	k.applied += len(fs)
	return errs
}

// Delete removes the keys' flows; missing ones are not an error.
func (k *Kernel) Delete(_ context.Context, keys []flow.Key) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, key := range keys {
		delete(k.table, key)
	}
	return nil
}

// Put is what traffic does to the table: it changes f (removes it for
// flow.EventDestroy) and emits the event the kernel would.
func (k *Kernel) Put(f flow.Flow, typ flow.EventType) {
	k.mu.Lock()
	if typ == flow.EventDestroy {
		delete(k.table, f.Key())
	} else {
		k.table[f.Key()] = f
	}
	k.mu.Unlock()
	k.events <- flow.Event{Type: typ, Flow: f}
}

// Set writes f without an event (a flow that was there before).
func (k *Kernel) Set(f flow.Flow) {
	k.mu.Lock()
	k.table[f.Key()] = f
	k.mu.Unlock()
}

// Remove deletes a flow without an event (its DESTROY was lost).
func (k *Kernel) Remove(key flow.Key) {
	k.mu.Lock()
	delete(k.table, key)
	k.mu.Unlock()
}

// Emit sends ev as is, the table unchanged.
func (k *Kernel) Emit(ev flow.Event) { k.events <- ev }

// Pending is the number of events not taken yet.
func (k *Kernel) Pending() int { return len(k.events) }

// Applied is the number of flows passed to Inject so far.
func (k *Kernel) Applied() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.applied
}

// Held is the number of Injects waiting at Gate now.
func (k *Kernel) Held() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.held
}

// Snapshot returns a copy of the table.
func (k *Kernel) Snapshot() map[flow.Key]flow.Flow {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[flow.Key]flow.Flow, len(k.table))
	for key, f := range k.table {
		out[key] = f
	}
	return out
}
