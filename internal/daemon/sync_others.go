//go:build !linux

package daemon

import (
	"fmt"
	"net"
	"runtime"

	"github.com/carpd/carpd/internal/config"
)

// listenSync is only implemented on Linux.
func listenSync(sc config.Sync) (net.PacketConn, error) {
	return nil, fmt.Errorf("state sync is not implemented on %s", runtime.GOOS)
}
