//go:build !unix

package openwrt

import (
	"os"
	"syscall"
)

// groupAttr: no process groups here; only the child itself is signalled.
func groupAttr() *syscall.SysProcAttr { return nil }

// signalGroup kills p (there is no group to signal on this system).
func signalGroup(p *os.Process, _ syscall.Signal) error { return p.Kill() }
