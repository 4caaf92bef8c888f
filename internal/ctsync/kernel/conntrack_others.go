//go:build !linux

package kernel

import (
	"context"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// Conntrack is the kernel's conntrack table; there is none outside Linux.
type Conntrack struct{}

// Open fails: ctnetlink is Linux only.
func Open(cfg Config) (*Conntrack, error) { return nil, errUnimplemented }

// Close does nothing.
func (c *Conntrack) Close() error { return nil }

// Events returns a closed channel.
func (c *Conntrack) Events() <-chan flow.Event {
	ch := make(chan flow.Event)
	close(ch)
	return ch
}

// Stats returns zero counters.
func (c *Conntrack) Stats() Stats { return Stats{} }

// Dump fails.
func (c *Conntrack) Dump(ctx context.Context) ([]flow.Flow, error) { return nil, errUnimplemented }

// Each fails.
func (c *Conntrack) Each(ctx context.Context, fn func(*flow.Flow)) error { return errUnimplemented }

// Apply fails for every flow.
func (c *Conntrack) Apply(ctx context.Context, flows []flow.Flow) []error {
	errs := make([]error, len(flows))
	for i := range errs {
		errs[i] = errUnimplemented
	}
	return errs
}

// Inject fails for every flow.
func (c *Conntrack) Inject(ctx context.Context, flows []flow.Flow, _ func(*flow.Flow) bool) []error {
	return c.Apply(ctx, flows)
}

// Admit refuses everything.
func (c *Conntrack) Admit(*flow.Flow) flow.Refusal { return flow.RefusedInvalid }

// MaxTimeout is DefaultTimeouts'.
func (c *Conntrack) MaxTimeout(f *flow.Flow) uint32 {
	t := DefaultTimeouts
	return t.Max(f)
}

// Delete fails.
func (c *Conntrack) Delete(ctx context.Context, keys []flow.Key) error { return errUnimplemented }
