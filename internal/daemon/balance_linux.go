package daemon

import (
	"net"

	"github.com/carpd/carpd/internal/balance"
)

func openDatapath(dev string, vhid uint8, mac net.HardwareAddr, nodes int) (Datapath, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, err
	}
	return balance.Open(ifi.Index, vhid, mac, nodes)
}
