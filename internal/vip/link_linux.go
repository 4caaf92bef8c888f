package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// Link watcher tuning.
const (
	// linkEventBuffer is the capacity of the Events channel.
	linkEventBuffer = 128

	// linkPollInterval is how often the watcher dumps all links and
	// re-emits what its subscription missed or dropped.
	// linkPollInterval is the safety-net re-poll. Kernel events do the real
	// work; a poll also runs at once after events were dropped (full
	// channel) or the socket overflowed. A full dump costs far more than
	// idle CARP, so it stays rare: idle CPU is a design target.
	linkPollInterval = 30 * time.Second
)

// LinkUp reports whether the named interface can carry CARP traffic: it is
// administratively up (IFF_UP), running (IFF_RUNNING), and its operational
// state is up, or unknown with carrier (IFF_LOWER_UP) for drivers that do not
// report one (dummy, some tunnels). A missing interface is an error wrapping
// ErrNoInterface. It asks the kernel of the calling thread's namespace.
func LinkUp(ifname string) (bool, error) {
	if err := checkInterfaceName(ifname); err != nil {
		return false, err
	}
	c, err := dialRouteConn()
	if err != nil {
		return false, fmt.Errorf("vip: link %s: dial rtnetlink: %w", ifname, err)
	}
	defer c.Close()
	lm, err := getLinkMessage(c, ifname)
	if err != nil {
		return false, fmt.Errorf("vip: link: %w", err)
	}
	return linkUp(lm), nil
}

// linkUp applies LinkUp's rule to a kernel link message. The kernel sets
// IFF_RUNNING when the operational state is up or unknown (netif_oper_up,
// dev_get_flags in net/core/dev.c); unknown also needs carrier here.
func linkUp(lm *ifInfoMsg) bool {
	const want = unix.IFF_UP | unix.IFF_RUNNING
	if lm.Flags&want != want {
		return false
	}
	switch lm.OperState {
	case ifOperUp:
		return true
	case ifOperUnknown:
		return lm.Flags&unix.IFF_LOWER_UP != 0
	default:
		return false
	}
}

// Watcher is the daemon's one view of the kernel's links and addresses: it
// subscribes once to link and address changes (RTNLGRP_LINK,
// RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR), reports link changes as
// LinkEvents, for "link down demotes", and keeps every interface's
// addresses, which Addrs and IsLocal read without blocking. An address
// counts from the moment its RTM_NEWADDR is received; the periodic and
// overflow dumps (below) put right whatever the subscription missed.
//
// Events first delivers the current state of every link, then one event per
// change of a link's LinkUp value, appearance, rename or disappearance;
// other link messages (statistics, MTU, ...) are filtered out.
//
// Backpressure: the Events channel holds linkEventBuffer events and the
// watcher never blocks on it. When it is full the watcher drops the oldest
// event, logs a warning, and remembers the link's name; at the next poll
// (right after the read that dropped it) it sends that link's current state again. The kernel side is
// handled the same way: if the netlink socket overflows (ENOBUFS), the
// watcher polls at once. A slow reader therefore sees intermediate states
// collapsed, but always ends with every link's current state.
type Watcher struct {
	events chan LinkEvent
	cancel context.CancelFunc
	wg     sync.WaitGroup // the run goroutine
	log    *logx.Logger

	// sub (the link and address subscription) and dump (polls) are owned by run,
	// which closes them. Both are opened by Watch, so they belong to
	// the network namespace of Watch's caller.
	sub  *nl.Conn
	dump *nl.Conn

	// addrs is written by run and read by anyone (Addrs, IsLocal).
	addrs *addrTable

	// Owned by run; no lock.
	table    linkTable
	interval time.Duration
	dropped  int // events dropped since the last warning
}

// Watch subscribes to link and address changes in the network namespace of
// the calling thread. The watcher runs until ctx is done or Close is called;
// then Events is closed.
func Watch(ctx context.Context, log *logx.Logger) (*Watcher, error) {
	return watch(ctx, log, linkPollInterval)
}

// watch is Watch with a poll interval, for tests.
func watch(ctx context.Context, log *logx.Logger, interval time.Duration) (*Watcher, error) {
	// Subscribe before the first dump, so that no change falls between.
	sub, err := nl.Dial(unix.NETLINK_ROUTE,
		&nl.Config{Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR})
	if err != nil {
		return nil, fmt.Errorf("vip: watch links: subscribe: %w", err)
	}
	dump, err := dialRouteConn()
	if err != nil {
		_ = sub.Close()
		return nil, fmt.Errorf("vip: watch links: dial rtnetlink: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{
		events:   make(chan LinkEvent, linkEventBuffer),
		cancel:   cancel,
		log:      discardIfNil(log),
		sub:      sub,
		dump:     dump,
		table:    newLinkTable(),
		addrs:    newAddrTable(),
		interval: interval,
	}
	if err := w.poll(); err != nil {
		cancel()
		_ = sub.Close()
		_ = dump.Close()
		return nil, fmt.Errorf("vip: watch links: %w", err)
	}
	w.wg.Add(1)
	go w.run(ctx)
	return w, nil
}

// Events returns the channel of link events. It is closed when the watcher
// stops.
func (w *Watcher) Events() <-chan LinkEvent { return w.events }

// Addrs returns the addresses of the named interface, the primary first (in
// the kernel's order), as last reported by the kernel. The caller must not
// change the slice. Safe for concurrent use; it never blocks.
func (w *Watcher) Addrs(ifname string) []netip.Addr { return w.addrs.addrs(ifname) }

// IsLocal reports whether a is an address of any interface, or the IPv4
// broadcast address of one of their subnets (traffic to it is the host's
// too). Safe for concurrent use; it never blocks.
func (w *Watcher) IsLocal(a netip.Addr) bool { return w.addrs.isLocal(a) }

// Close stops the watcher and waits for its goroutine to exit. It is safe to
// call more than once.
func (w *Watcher) Close() error {
	w.cancel()
	w.wg.Wait()
	return nil
}

// run receives link messages until ctx is done, polling every w.interval.
func (w *Watcher) run(ctx context.Context) {
	defer w.wg.Done()
	defer close(w.events)
	defer w.dump.Close()
	defer w.sub.Close()

	// Cancellation interrupts a blocked Receive through a past deadline;
	// the ctx.Err check after every SetReadDeadline below makes sure the
	// loop cannot overwrite that deadline and then block. stop runs
	// before the sockets are closed and waits for the interruption.
	stop := afterFunc(ctx, func() {
		_ = w.sub.SetReadDeadline(time.Unix(1, 0))
		_ = w.dump.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()

	next := time.Now().Add(w.interval)
	for {
		_ = w.sub.SetReadDeadline(next)
		if ctx.Err() != nil {
			return
		}
		msgs, err := w.sub.Receive()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil:
			w.receive(msgs)
			if time.Now().Before(next) && w.dropped == 0 {
				continue
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Time to poll.
		case errors.Is(err, unix.ENOBUFS):
			w.log.Warn("link event socket overflowed, polling", "err", err)
		default:
			// Unexpected; poll (which will report a dead socket) and
			// do not spin.
			w.log.Error("receive link events", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(w.interval / 4):
			}
		}
		if err := w.poll(); err != nil && ctx.Err() == nil {
			w.log.Error("poll links", "err", err)
		}
		next = time.Now().Add(w.interval)
	}
}

// receive applies the messages of one read, then publishes the addresses
// if they changed: at once, so an address counts before the next read.
func (w *Watcher) receive(msgs []nl.Message) {
	changed := false
	for _, m := range msgs {
		changed = w.handle(m) || changed
	}
	if changed {
		w.addrs.publish(w.table.links)
	}
}

// handle applies one link or address message. It reports whether the
// addresses or the names of links changed, which must then be published.
func (w *Watcher) handle(m nl.Message) bool {
	switch m.Header.Type {
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		var am ifAddrMsg
		if err := am.UnmarshalBinary(m.Data); err != nil {
			w.log.Warn("bad address message", "type", m.Header.Type, "err", err)
			return false
		}
		return w.addrs.apply(uint16(m.Header.Type), &am)
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
	default:
		return false
	}
	var lm ifInfoMsg
	if err := lm.UnmarshalBinary(m.Data); err != nil {
		w.log.Warn("bad link message", "type", m.Header.Type, "err", err)
		return false
	}
	var evs []LinkEvent
	if m.Header.Type == unix.RTM_NEWLINK {
		evs = w.table.update(&lm)
	} else {
		evs = w.table.remove(int(lm.Index))
		w.addrs.dropLink(int(lm.Index))
	}
	w.emit(evs...)
	// A link appeared, went or was renamed: names and addresses changed.
	return len(evs) > 0 || m.Header.Type == unix.RTM_DELLINK
}

// poll dumps all links and emits what changed or was dropped.
func (w *Watcher) poll() error {
	_ = w.dump.SetReadDeadline(time.Now().Add(w.interval))
	links, err := listLinks(w.dump)
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	addrs, err := listAddrMsgs(w.dump)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	if w.dropped > 0 {
		w.log.Warn("link events dropped, resent current state", "dropped", w.dropped)
		w.dropped = 0
	}
	w.emit(w.table.resync(links)...)
	w.addrs.resync(addrs)
	w.addrs.publish(w.table.links)
	return nil
}

// emit sends events without blocking, dropping the oldest queued event when
// the channel is full (see Watcher).
func (w *Watcher) emit(evs ...LinkEvent) {
	for _, ev := range evs {
		if w.offer(ev) {
			continue
		}
		select {
		case old := <-w.events:
			w.table.markDropped(old)
			w.dropped++
		default:
		}
		// Only run sends, so there is room now; but never block.
		if !w.offer(ev) {
			w.table.markDropped(ev)
			w.dropped++
		}
	}
}

// offer sends ev if the channel has room.
func (w *Watcher) offer(ev LinkEvent) bool {
	select {
	case w.events <- ev:
		return true
	default:
		return false
	}
}

// linkTable turns the kernel's link messages into LinkEvents: it remembers
// the last state reported for each link and the names whose events were
// dropped. It is pure, so tests feed it synthesized messages.
type linkTable struct {
	links   map[int]linkState // by ifindex: the state last reported
	dropped map[string]int    // names to report again at the next resync, with their last index
}

// linkState is what a LinkEvent said about one link.
type linkState struct {
	name string
	up   bool
}

func newLinkTable() linkTable {
	return linkTable{links: make(map[int]linkState), dropped: make(map[string]int)}
}

// update applies an RTM_NEWLINK.
func (t *linkTable) update(lm *ifInfoMsg) []LinkEvent {
	if lm.Name == "" {
		return nil // every kernel RTM_NEWLINK carries IFLA_IFNAME
	}
	idx := int(lm.Index)
	now := linkState{name: lm.Name, up: linkUp(lm)}
	prev, known := t.links[idx]
	if known && prev == now {
		return nil
	}
	var evs []LinkEvent
	if known && prev.name != now.name {
		// Renamed: the old name is gone.
		evs = append(evs, LinkEvent{Name: prev.name, Index: idx, Up: false})
	}
	t.links[idx] = now
	return append(evs, LinkEvent{Name: now.name, Index: idx, Up: now.up})
}

// remove applies an RTM_DELLINK.
func (t *linkTable) remove(idx int) []LinkEvent {
	prev, known := t.links[idx]
	if !known {
		return nil
	}
	delete(t.links, idx)
	return []LinkEvent{{Name: prev.name, Index: idx, Up: false}}
}

// resync applies a full dump: changed links, links that disappeared, and the
// current state of every name whose event was dropped.
func (t *linkTable) resync(links []ifInfoMsg) []LinkEvent {
	var evs []LinkEvent
	seen := make(map[int]bool, len(links))
	byName := make(map[string]int, len(links))
	for i := range links {
		lm := &links[i]
		seen[int(lm.Index)] = true
		byName[lm.Name] = int(lm.Index)
		evs = append(evs, t.update(lm)...)
	}
	for _, idx := range sortedKeys(t.links, func(a, b int) bool { return a < b }) {
		if !seen[idx] {
			evs = append(evs, t.remove(idx)...)
		}
	}
	emitted := make(map[string]bool, len(evs))
	for _, ev := range evs {
		emitted[ev.Name] = true
	}
	for _, name := range sortedKeys(t.dropped, func(a, b string) bool { return a < b }) {
		idx := t.dropped[name]
		if emitted[name] {
			continue
		}
		if now, ok := byName[name]; ok {
			evs = append(evs, LinkEvent{Name: name, Index: now, Up: t.links[now].up})
		} else {
			evs = append(evs, LinkEvent{Name: name, Index: idx, Up: false})
		}
	}
	clear(t.dropped)
	return evs
}

// markDropped remembers that ev was not delivered.
func (t *linkTable) markDropped(ev LinkEvent) {
	t.dropped[ev.Name] = ev.Index
}

// sortedKeys returns m's keys in the order less gives. sort.Slice rather
// than slices.Sorted: every type slices.Sort is instantiated with adds
// its own copy of pdqsort (about 45 KB of MIPS binary, package/SIZE.md).
func sortedKeys[K comparable, V any](m map[K]V, less func(a, b K) bool) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return less(keys[i], keys[j]) })
	return keys
}
