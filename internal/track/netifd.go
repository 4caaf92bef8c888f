package track

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/carpd/carpd/internal/openwrt"
)

// UbusNetifd is Env.Netifd over a ubus connection: Status calls
// `network.interface.NAME status`; the owner of the ubus connection (the
// daemon, which already listens to netifd's `network.interface` events)
// calls Notify on each event to wake the watchers.
type UbusNetifd struct {
	Caller openwrt.Caller

	mu       sync.Mutex
	watchers map[chan struct{}]struct{}
}

// Status reads the network's status from netifd.
func (n *UbusNetifd) Status(ctx context.Context, network string) (NetStatus, error) {
	raw, err := n.Caller.Call(ctx, "network.interface."+network, "status", nil)
	if err != nil {
		return NetStatus{}, fmt.Errorf("netifd does not know network %s: %w", network, err)
	}
	return parseNetStatus(raw)
}

// Watch returns a channel woken by Notify until ctx is done.
func (n *UbusNetifd) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.watchers == nil {
		n.watchers = map[chan struct{}]struct{}{}
	}
	n.watchers[ch] = struct{}{}
	n.mu.Unlock()
	go func() {
		<-ctx.Done()
		n.mu.Lock()
		delete(n.watchers, ch)
		n.mu.Unlock()
	}()
	return ch
}

// Notify wakes every watcher without blocking (a pending wake-up absorbs
// further ones).
func (n *UbusNetifd) Notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// parseNetStatus reads what interface trackers need of netifd's interface
// status: up, an IPv4 or IPv6 address (a delegated prefix alone is not
// one), a default route of either family, the L3 device.
func parseNetStatus(raw json.RawMessage) (NetStatus, error) {
	var st struct {
		Up       bool              `json:"up"`
		L3Device string            `json:"l3_device"`
		Device   string            `json:"device"`
		IPv4     []json.RawMessage `json:"ipv4-address"`
		IPv6     []json.RawMessage `json:"ipv6-address"`
		Route    []struct {
			Target string `json:"target"`
			Mask   int    `json:"mask"`
		} `json:"route"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return NetStatus{}, fmt.Errorf("bad status from netifd: %w", err)
	}
	ns := NetStatus{Up: st.Up, Address: len(st.IPv4)+len(st.IPv6) > 0, Device: st.L3Device}
	if ns.Device == "" {
		ns.Device = st.Device
	}
	for _, r := range st.Route {
		if r.Mask == 0 && (r.Target == "0.0.0.0" || r.Target == "::") {
			ns.DefaultRoute = true
		}
	}
	return ns, nil
}
