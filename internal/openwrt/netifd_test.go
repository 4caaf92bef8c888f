package openwrt

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/carpd/carpd/ubus/json"
)

type fakeUbus map[string]string

func (f fakeUbus) Call(ctx context.Context, path, method string, args json.RawMessage) (json.RawMessage, error) {
	if r, ok := f[path+" "+method]; ok {
		return json.RawMessage(r), nil
	}
	return nil, errors.New("not found")
}

func TestResolveInterface(t *testing.T) {
	// netifd's answer for a bridged LAN, abridged from a real router.
	u := fakeUbus{
		"network.interface.lan status":  `{"up":true,"pending":false,"available":true,"l3_device":"br-lan","proto":"static","device":"br-lan","ipv4-address":[{"address":"192.168.1.1","mask":24}]}`,
		"network.interface.wan status":  `{"up":false,"available":true,"proto":"dhcp","device":"eth1"}`,
		"network.interface.none status": `{"up":false,"available":false,"proto":"none"}`,
		"network.interface.junk status": `[1,2`,
	}
	ctx := context.Background()
	// A device name resolves to itself. Under qemu-user (the big-endian
	// MIPS run) netlink is not emulated and no device can be listed.
	if ifs, err := net.Interfaces(); err == nil && len(ifs) > 0 {
		name := ifs[0].Name
		if dev, nw, err := ResolveInterface(ctx, u, name); err != nil || dev != name || nw {
			t.Errorf("%s: %q %v %v", name, dev, nw, err)
		}
	} else {
		t.Logf("no device to resolve here (%v): device names not checked", err)
	}
	if dev, nw, err := ResolveInterface(ctx, u, "lan"); err != nil || dev != "br-lan" || !nw {
		t.Errorf("lan: %q %v %v", dev, nw, err)
	}
	if dev, _, err := ResolveInterface(ctx, u, "wan"); err != nil || dev != "eth1" {
		t.Errorf("wan (down): %q %v", dev, err)
	}
	for _, n := range []string{"none", "missing", "junk"} {
		if _, _, err := ResolveInterface(ctx, u, n); err == nil {
			t.Errorf("%s resolved", n)
		}
	}
	if _, _, err := ResolveInterface(ctx, nil, "lan"); !errors.Is(err, ErrNoDevice) {
		t.Errorf("without ubus: %v", err)
	}
}
