//go:build !linux

package daemon

import (
	"errors"
	"net"
)

func openDatapath(string, uint8, net.HardwareAddr, int) (Datapath, error) {
	return nil, errors.New("balancing needs Linux's eBPF Datapath")
}
