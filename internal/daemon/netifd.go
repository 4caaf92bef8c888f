package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/carpd/carpd/internal/track"
)

// ubusNetifd is the interface trackers' view of netifd over the ubus
// bridge: a network's status (`ubus call network.interface.NAME status`)
// and a wake-up on each network.interface event.
type ubusNetifd struct{ b *ubusBridge }

// trackNetifd is the Netifd of the trackers: netifd over ubus, nil
// without ubus (plain Linux: device carrier only).
func (d *Daemon) trackNetifd() track.Netifd {
	if d.ubus == nil {
		return nil
	}
	return ubusNetifd{d.ubus}
}

func (n ubusNetifd) Status(ctx context.Context, network string) (track.NetStatus, error) {
	raw, err := n.b.cl.Call(ctx, "network.interface."+network, "status", nil)
	if err != nil {
		return track.NetStatus{}, err
	}
	return parseNetStatus(network, raw)
}

func (n ubusNetifd) Watch(ctx context.Context) <-chan struct{} { return n.b.watchNetworks(ctx) }

// parseNetStatus reads netifd's status of a network: up, whether it has
// an address, whether it has a default route (IPv4 or IPv6), its device.
func parseNetStatus(network string, raw json.RawMessage) (track.NetStatus, error) {
	type addr struct {
		Address string `json:"address"`
	}
	type route struct {
		Target string `json:"target"`
		Mask   int    `json:"mask"`
	}
	var st struct {
		Up       bool    `json:"up"`
		L3Device string  `json:"l3_device"`
		Device   string  `json:"device"`
		IPv4     []addr  `json:"ipv4-address"`
		IPv6     []addr  `json:"ipv6-address"`
		Prefix   []addr  `json:"ipv6-prefix-assignment"`
		Route    []route `json:"route"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return track.NetStatus{}, fmt.Errorf("network %q: bad status from netifd: %w", network, err)
	}
	ns := track.NetStatus{Up: st.Up, Device: st.L3Device, Address: len(st.IPv4)+len(st.IPv6)+len(st.Prefix) > 0}
	if ns.Device == "" {
		ns.Device = st.Device
	}
	for _, r := range st.Route {
		if a, err := netip.ParseAddr(r.Target); err == nil && a.IsUnspecified() && r.Mask == 0 {
			ns.DefaultRoute = true
		}
	}
	return ns, nil
}
