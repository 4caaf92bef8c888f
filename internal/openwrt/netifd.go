package openwrt

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/carpd/carpd/ubus/json"
)

// Caller is the part of a ubus client that network resolution needs.
type Caller interface {
	Call(ctx context.Context, path, method string, args json.RawMessage) (json.RawMessage, error)
}

// ErrNoDevice: the name is neither a network device nor an OpenWrt network
// that is up with a device.
var ErrNoDevice = errors.New("no such device or network")

// ResolveInterface returns the network device for name: name itself when a
// device of that name exists (br-lan, eth0.2), otherwise the l3_device of
// the OpenWrt network interface called name (lan, wan), as netifd reports it
// through `ubus call network.interface.<name> status` (docs/uci.md#config-vhid).
// ubus may be nil (plain Linux): then only device names resolve.
func ResolveInterface(ctx context.Context, ubus Caller, name string) (dev string, network bool, err error) {
	if _, err := net.InterfaceByName(name); err == nil {
		return name, false, nil
	}
	if ubus == nil {
		return "", false, fmt.Errorf("%q: %w", name, ErrNoDevice)
	}
	raw, err := ubus.Call(ctx, "network.interface."+name, "status", nil)
	if err != nil {
		return "", false, fmt.Errorf("%q is not a device, and netifd does not know it as a network: %w", name, err)
	}
	return l3Device(name, raw)
}

func l3Device(name string, raw json.RawMessage) (string, bool, error) {
	var st struct {
		L3Device string `json:"l3_device"`
		Device   string `json:"device"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", true, fmt.Errorf("network %q: bad status from netifd: %w", name, err)
	}
	dev := st.L3Device
	if dev == "" {
		// A network that is down has no l3_device yet but may name its
		// device; CARP can run on it as soon as it exists.
		dev = st.Device
	}
	if dev == "" {
		return "", true, fmt.Errorf("network %q has no device yet: %w", name, ErrNoDevice)
	}
	return dev, true, nil
}
