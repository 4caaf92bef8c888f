// Package asyncq is a bounded, ordered queue drained by one goroutine: the
// way carpd hands work (hotplug scripts, ubus events) from its state
// machines to slow consumers without ever blocking them.
package asyncq

import "sync"

// Queue runs fn on each pushed value, one at a time, in push order, on its
// own goroutine. Push never blocks: when max values are waiting, the oldest
// is dropped and counted, since for state notifications the newest matters
// most and memory must stay bounded.
type Queue[T any] struct {
	fn  func(T)
	max int

	mu      sync.Mutex // guards items, dropped and closed
	items   []T
	dropped uint64
	closed  bool

	wake chan struct{}
	done chan struct{}
}

// New starts a queue of at most max waiting values.
func New[T any](max int, fn func(T)) *Queue[T] {
	q := &Queue[T]{fn: fn, max: max, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go q.run()
	return q
}

// Push queues v; after Close it is ignored.
func (q *Queue[T]) Push(v T) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	if len(q.items) == q.max {
		var zero T
		q.items[0] = zero
		q.items = q.items[1:]
		q.dropped++
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.poke()
}

// Dropped returns how many values were dropped because the queue was full.
func (q *Queue[T]) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// Close lets the values already queued run, then stops the goroutine and
// waits for it. It is idempotent.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.poke()
	<-q.done
}

func (q *Queue[T]) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue[T]) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			closed := q.closed
			q.mu.Unlock()
			if closed {
				return
			}
			<-q.wake
			continue
		}
		v := q.items[0]
		q.items = q.items[1:]
		q.mu.Unlock()
		q.fn(v)
	}
}
