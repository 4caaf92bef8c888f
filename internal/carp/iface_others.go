//go:build !linux

package carp

import (
	"fmt"
	"net/netip"
	"runtime"

	"github.com/carpd/carpd/internal/logx"
)

// IfaceStats counts packets dropped before they reach a vhost.
type IfaceStats struct {
	UnknownVHID uint64 `json:"unknown_vhid"`
	Short       uint64 `json:"too_short"`
	ReadErrors  uint64 `json:"read_errors"`
}

// Iface is only implemented on Linux.
type Iface struct{}

// OpenIface is only implemented on Linux.
func OpenIface(name string, addrs IfaceAddrs, log *logx.Logger) (*Iface, error) {
	return nil, fmt.Errorf("carp: raw CARP sockets are not implemented on %s", runtime.GOOS)
}

func (i *Iface) Name() string                     { return "" }
func (i *Iface) Attach(v *VHost, cfg VHostConfig) {}
func (i *Iface) Detach(vhid uint8)                {}
func (i *Iface) Len() int                         { return 0 }
func (i *Iface) Stats() IfaceStats                { return IfaceStats{} }
func (i *Iface) Close() error                     { return nil }
func (i *Iface) Source(v6 bool) netip.Addr        { return netip.Addr{} }
func (i *Iface) IsLocal(a netip.Addr) bool        { return false }
func (i *Iface) Send(payload []byte, dst netip.Addr) error {
	return fmt.Errorf("carp: not implemented on %s", runtime.GOOS)
}
