//go:build !linux

package track

import "errors"

// openICMP: trackers' raw ICMP sockets are Linux only.
func openICMP(v6 bool, device string) (ICMPConn, error) {
	return nil, errors.New("ping trackers need Linux")
}
