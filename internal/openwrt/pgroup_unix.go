//go:build unix

package openwrt

import (
	"os"
	"syscall"
)

// groupAttr starts the child as the leader of a new process group, so that
// everything it starts (a hook script's children) can be signalled at once.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// signalGroup sends sig to the process group p leads. ESRCH (the group is
// empty) is not an error.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	if err := syscall.Kill(-p.Pid, sig); err != nil && err != syscall.ESRCH {
		return os.NewSyscallError("kill", err)
	}
	return nil
}
