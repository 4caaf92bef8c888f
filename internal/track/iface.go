package track

import (
	"context"
	"fmt"
	"net"
)

// ifaceProber follows an OpenWrt network through netifd (good when it is
// up, has an address and a default route) or, for a name that is a device
// and not a network netifd knows, the device's carrier.
type ifaceProber struct {
	t      *Tracker
	ctx    context.Context
	cancel context.CancelFunc
	ch     <-chan struct{}
}

func newInterfaceProber(t *Tracker) prober {
	p := &ifaceProber{t: t}
	if t.env.Netifd != nil {
		p.ctx, p.cancel = context.WithCancel(context.Background())
		p.ch = t.env.Netifd.Watch(p.ctx)
	}
	return p
}

func (p *ifaceProber) round(ctx context.Context) result {
	name, w := p.t.cfg.Device, p.t.cfg.Weight
	if p.t.env.Netifd != nil {
		rctx, cancel := context.WithTimeout(ctx, p.t.cfg.Timeout)
		st, err := p.t.env.Netifd.Status(rctx, name)
		cancel()
		if err == nil {
			switch {
			case !st.Up:
				return result{value: w, reason: fmt.Sprintf("network %s is down", name)}
			case !st.Address:
				return result{value: w, reason: fmt.Sprintf("network %s has no address", name)}
			case !st.DefaultRoute:
				return result{value: w, reason: fmt.Sprintf("network %s has no default route", name)}
			}
			return result{reason: fmt.Sprintf("network %s is up with an address and a default route", name)}
		}
		if _, derr := net.InterfaceByName(name); derr != nil {
			return result{value: w, reason: fmt.Sprintf("%s: %v", name, err), err: err.Error()}
		}
	}
	up, err := p.t.env.LinkUp(name)
	switch {
	case err != nil:
		return result{value: w, reason: fmt.Sprintf("device %s: %v", name, err), err: err.Error()}
	case !up:
		return result{value: w, reason: fmt.Sprintf("device %s has no carrier", name)}
	}
	return result{reason: fmt.Sprintf("device %s has carrier", name)}
}

func (p *ifaceProber) wake() <-chan struct{} { return p.ch }

func (p *ifaceProber) close() {
	if p.cancel != nil {
		p.cancel()
	}
}
