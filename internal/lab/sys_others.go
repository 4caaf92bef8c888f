//go:build !linux

package lab

import (
	"fmt"
	"runtime"
	"syscall"
)

func procAttr() *syscall.SysProcAttr { return nil }

func inNS(string, func() error) error { return unimplemented() }

func waitExited(int) error { return unimplemented() }

func killGroup(int, syscall.Signal) error { return unimplemented() }

func signalPid(int, syscall.Signal) error { return unimplemented() }

func pidAlive(int) bool { return true }

func unimplemented() error { return fmt.Errorf("%w: %s", errUnimplemented, runtime.GOOS) }
