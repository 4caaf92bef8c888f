package daemon

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/ubus/json"
)

// testConfig is a config without vhids, ubus, hooks or sync, its control
// socket (and state file) in a fresh directory.
func testConfig(t *testing.T) *config.Config {
	cfg := config.Default()
	cfg.Global.ControlSocket = filepath.Join(t.TempDir(), "carpd.sock")
	cfg.Global.UbusSocket, cfg.Global.HotplugCall = "", ""
	return cfg
}

// runDaemon runs a daemon for cfg until the test ends. No vhid needs
// root: it serves the control socket like any other.
func runDaemon(t *testing.T, cfg *config.Config, opts Options) *Daemon {
	t.Helper()
	d := New(cfg, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	for i := 0; ; i++ {
		if _, err := Call(cfg.Global.ControlSocket, Request{Method: "status"}); err == nil {
			return d
		} else if i == 200 {
			t.Fatalf("daemon not answering: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestControlOversizeRequest: a request larger than MaxRequest is refused
// with a clear error, after the server read (and allocated for) no more
// than the limit; the sender finds the socket closed long before it has
// written its 64 MB.
func TestControlOversizeRequest(t *testing.T) {
	cfg := testConfig(t)
	runDaemon(t, cfg, Options{})
	huge := make([]byte, 64<<20)
	copy(huge, `{"method":"status","interface":"`)
	for i := 32; i < len(huge); i++ {
		huge[i] = 'a'
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := dialControl(cfg.Global.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	written := make(chan int, 1)
	go func() {
		n, _ := c.Write(huge)
		written <- n
	}()
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		t.Fatalf("no answer: %v", err)
	}
	n := <-written
	runtime.ReadMemStats(&after)
	if resp.OK || !strings.Contains(resp.Error, "larger than 65536 bytes") {
		t.Fatalf("answer %+v", resp)
	}
	if n >= len(huge)/4 {
		t.Errorf("the daemon took %d bytes of the request", n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("the daemon allocated %d bytes for one request", alloc)
	}
	// A request of exactly the limit (spaces after the JSON) is served.
	ok := append([]byte(`{"method":"status"}`), make([]byte, MaxRequest-19)...)
	for i := 19; i < len(ok); i++ {
		ok[i] = ' '
	}
	c2, err := dialControl(cfg.Global.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	go c2.Write(ok)
	if err := json.NewDecoder(c2).Decode(&resp); err != nil || !resp.OK {
		t.Fatalf("request of %d bytes: %v %+v", len(ok), err, resp)
	}
}

// TestControlConnectionLimit: with maxConns connections open and silent,
// one more is answered "busy" at once; when one closes, requests are
// served again. The silent ones are cut at controlTimeout.
func TestControlConnectionLimit(t *testing.T) {
	cfg := testConfig(t)
	runDaemon(t, cfg, Options{})
	var idle []*net.UnixConn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < maxConns; i++ {
		c, err := dialControl(cfg.Global.ControlSocket)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// The accept loop takes them in order; a request after them waits
	// for none of them.
	var err error
	for i := 0; i < 100; i++ {
		start := time.Now()
		_, err = Call(cfg.Global.ControlSocket, Request{Method: "status"})
		if err != nil && strings.Contains(err.Error(), "busy") {
			if d := time.Since(start); d > time.Second {
				t.Fatalf("busy answer took %v", d)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("connection %d: %v, want busy", maxConns+1, err)
	}
	idle[0].Close()
	idle = idle[1:]
	for i := 0; ; i++ {
		if _, err = Call(cfg.Global.ControlSocket, Request{Method: "status"}); err == nil {
			break
		} else if i == 100 {
			t.Fatalf("after one connection closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// An idle connection is closed by the daemon at the deadline.
	_ = idle[1].SetReadDeadline(time.Now().Add(controlTimeout + 3*time.Second))
	start := time.Now()
	var resp Response
	err = json.NewDecoder(idle[1]).Decode(&resp)
	if d := time.Since(start); errors.Is(err, os.ErrDeadlineExceeded) || d > controlTimeout+2*time.Second {
		t.Fatalf("idle connection still open after %v: %v", d, err)
	}
}

// TestControlSocketMode: whenever the socket exists at its path, it is
// mode 0600: a watcher that looks at the path in a tight loop while the
// socket is created again and again never sees another mode.
func TestControlSocketMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carpd.sock")
	var stop atomic.Bool
	var seen, bad atomic.Int64
	var badMode atomic.Uint32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			fi, err := os.Lstat(path)
			if err != nil {
				continue
			}
			seen.Add(1)
			if fi.Mode()&fs.ModePerm != 0o600 {
				bad.Add(1)
				badMode.Store(uint32(fi.Mode() & fs.ModePerm))
			}
		}
	}()
	for i := 0; i < 300; i++ {
		l, err := listenControl(path)
		if err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModePerm != 0o600 || fi.Mode()&fs.ModeSocket == 0 {
			t.Errorf("right after listen: %v %v", fi.Mode(), err)
		}
		l.Close()
		os.Remove(path)
	}
	stop.Store(true)
	wg.Wait()
	if seen.Load() == 0 {
		t.Fatal("the watcher never saw the socket")
	}
	if bad.Load() > 0 {
		t.Fatalf("the socket had mode %o in %d of %d looks", badMode.Load(), bad.Load(), seen.Load())
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}

// TestControlPeerCredentials: a user other than root and carpd's own is
// refused by the socket's mode, and when the mode is opened up (by
// mistake), by its credentials. The client runs as nobody in a child
// process (this test binary, re-executed).
func TestControlPeerCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	cfg := testConfig(t)
	runDaemon(t, cfg, Options{})
	sock := cfg.Global.ControlSocket
	// nobody must reach the socket's directory and run a copy of us.
	for dir := filepath.Dir(sock); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(filepath.Dir(sock), "daemon.test")
	if err := copyFile(self, bin); err != nil {
		t.Fatal(err)
	}
	client := func() string {
		cmd := exec.Command(bin, "-test.run=^TestControlClientHelper$", "-test.v")
		cmd.Env = []string{"CARPD_TEST_CONTROL_SOCKET=" + sock}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := client(); !strings.Contains(out, "RESULT error") || !strings.Contains(out, "permission denied") {
		t.Fatalf("nobody with the socket at 0600:\n%s", out)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	out := client()
	if !strings.Contains(out, "RESULT error") || !strings.Contains(out, "uid 65534 may not control carpd") {
		t.Fatalf("nobody with the socket at 0666:\n%s", out)
	}
	if _, err := Call(sock, Request{Method: "status"}); err != nil {
		t.Fatalf("root: %v", err)
	}
}

// TestControlClientHelper is the client of TestControlPeerCredentials.
func TestControlClientHelper(t *testing.T) {
	sock := os.Getenv("CARPD_TEST_CONTROL_SOCKET")
	if sock == "" {
		t.Skip("run by TestControlPeerCredentials")
	}
	if _, err := Call(sock, Request{Method: "status"}); err != nil {
		t.Logf("RESULT error %v", err)
		return
	}
	t.Log("RESULT ok")
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func status(t *testing.T, sock string) Status {
	t.Helper()
	raw, err := Call(sock, Request{Method: "status"})
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st
}
