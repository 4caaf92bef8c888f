package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/carpd/carpd/internal/config"
	"golang.org/x/sys/unix"
)

// bindHelperEnv makes the test binary a bind helper (TestMain-free: the
// helper test below runs only with it set).
const bindHelperEnv = "CARPD_TEST_BIND_PORT"

// hijackBind is what another local program would do to take the sync
// port: a socket with SO_REUSEADDR (and SO_REUSEPORT), bound to the same
// device and port. It returns bind's error.
func hijackBind(device string, port int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	// Unprivileged since Linux 5.7 on an unbound socket; ignore a refusal
	// (the bind below is then without a device, which conflicts too).
	_ = unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, device)
	return unix.Bind(fd, &unix.SockaddrInet4{Port: port})
}

// TestSyncBindHelper is the child of TestSyncSocketNotShared; it does
// nothing in a normal run.
func TestSyncBindHelper(t *testing.T) {
	p := os.Getenv(bindHelperEnv)
	if p == "" {
		t.Skip("helper of TestSyncSocketNotShared")
	}
	port, _ := strconv.Atoi(p)
	err := hijackBind("lo", port)
	switch {
	case err == nil:
		os.Exit(10) // bound: the port can be taken
	case errors.Is(err, unix.EADDRINUSE):
		os.Exit(11)
	}
	fmt.Fprintln(os.Stderr, "bind:", err)
	os.Exit(12)
}

// TestSyncSocketNotShared: once carpd holds the sync port, no other
// socket can bind it, not even with SO_REUSEADDR/SO_REUSEPORT, in this
// process or (as root only: it needs setuid) as user nobody.
func TestSyncSocketNotShared(t *testing.T) {
	pc, err := listenSync(config.Sync{Interface: "lo", Peer: netip.MustParseAddr("127.0.0.2"), Port: 0})
	if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
		t.Skipf("SO_BINDTODEVICE needs CAP_NET_RAW on this kernel: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port

	if err := hijackBind("lo", port); !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("second bind of the sync port in the same process: %v, want EADDRINUSE", err)
	}

	if os.Geteuid() != 0 {
		t.Log("not root: the unprivileged-user check needs setuid; skipped")
		return
	}
	// A copy of the test binary that nobody may run (the build directory
	// is root's alone).
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "carpd-bind")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	helper := filepath.Join(dir, "helper.test")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(helper, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(helper, "-test.run=^TestSyncBindHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), bindHelperEnv+"="+strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("bind helper: %v\n%s", err, out)
	}
	switch ee.ExitCode() {
	case 11:
	case 10:
		t.Fatalf("user nobody bound the sync port %d next to carpd", port)
	default:
		t.Fatalf("bind helper: %v\n%s", err, out)
	}
}
