package rawsock

import "net"

// Addr is a link-layer address; it is what WriteTo takes and ReadFrom
// returns.
type Addr struct {
	HardwareAddr net.HardwareAddr
}

// Network is "packet".
func (a *Addr) Network() string { return "packet" }

func (a *Addr) String() string { return a.HardwareAddr.String() }
