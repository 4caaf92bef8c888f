package kernel

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// sysctlDir holds the conntrack sysctls; /proc/sys/net shows the network
// namespace of the thread that opens a file in it.
const sysctlDir = "/proc/sys/net/netfilter"

// ReadTimeouts reads the conntrack timeouts of the network namespace
// netns (a file descriptor; 0: the caller's), with DefaultTimeouts for
// what cannot be read (no conntrack module loaded yet, say).
func ReadTimeouts(netns int) Timeouts {
	t := DefaultTimeouts
	read := func(name string) (uint32, bool) {
		b, err := os.ReadFile(filepath.Join(sysctlDir, name))
		if err != nil {
			return 0, false
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
		return uint32(v), err == nil
	}
	if netns == 0 {
		t.load(read)
		return t
	}
	// In the namespace, on a thread of our own that dies with it if it
	// cannot go back.
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			return
		}
		defer self.Close()
		if unix.Setns(netns, unix.CLONE_NEWNET) != nil {
			runtime.UnlockOSThread()
			return
		}
		t.load(read)
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	<-done
	return t
}
