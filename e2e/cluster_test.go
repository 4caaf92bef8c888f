// Package e2e runs whole carpd daemons in network namespaces: routers and a
// client on one bridge, real raw sockets, real rtnetlink, real ARP and ND.
// The tests need root; without it they skip, and with
// CARPD_REQUIRE_NETNS=1 (set by `make test` and CI) they fail instead.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab"
)

// carpdBin is the daemon under test, built once by TestMain.
var carpdBin string

func TestMain(m *testing.M) {
	// carpd accepts its sockets, state file and hooks in temporary
	// directories only when the environment names them (config.TrustedDirsEnv).
	os.Setenv("CARPD_TRUSTED_DIRS", os.TempDir())
	dir, err := os.MkdirTemp("", "carpd-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	carpdBin = filepath.Join(dir, "carpd")
	if env := os.Getenv("CARPD_BIN"); env != "" {
		carpdBin = env
	} else if out, err := exec.Command("go", "build", "-race", "-o", carpdBin, "..").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building carpd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// router is one carpd node.
type router struct {
	name  string
	host  *lab.Host
	links map[string]*lab.Link
	dir   string
	proc  *lab.Proc
}

func (r *router) sock() string { return filepath.Join(r.dir, "carpd.sock") }
func (r *router) conf() string { return filepath.Join(r.dir, "carpd.conf") }

// cluster is a lab with a client and routers on one or more segments.
type cluster struct {
	t       *testing.T
	lab     *lab.Lab
	sws     map[string]*lab.Switch
	client  *lab.Host
	routers []*router
}

// segment describes one L2 segment: routers get .2, .3, ... and the client .100.
type segment struct {
	name   string // also the interface name on every host
	prefix string // "10.0.1" (IPv4 /24) — IPv6 is fd00:<n>::/64
	n      int
}

func newCluster(t *testing.T, nRouters int, segs ...segment) *cluster {
	t.Helper()
	lab.Require(t)
	l, err := lab.New("cde")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	c := &cluster{t: t, lab: l, sws: map[string]*lab.Switch{}}
	if len(segs) == 0 {
		segs = []segment{{name: "lan", prefix: "10.0.1", n: 1}}
	}
	if c.client, err = l.Host("client"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < nRouters; i++ {
		h, err := l.Host(fmt.Sprintf("r%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		c.routers = append(c.routers, &router{name: h.Name, host: h, links: map[string]*lab.Link{}, dir: t.TempDir()})
	}
	for _, s := range segs {
		sw, err := l.Switch(s.name)
		if err != nil {
			t.Fatal(err)
		}
		c.sws[s.name] = sw
		if _, err := l.Attach(c.client, sw, s.name, s.prefix+".100/24", fmt.Sprintf("fd00:%d::100/64", s.n)); err != nil {
			t.Fatal(err)
		}
		for i, r := range c.routers {
			lk, err := l.Attach(r.host, sw, s.name, fmt.Sprintf("%s.%d/24", s.prefix, i+2), fmt.Sprintf("fd00:%d::%d/64", s.n, i+2))
			if err != nil {
				t.Fatal(err)
			}
			r.links[s.name] = lk
		}
	}
	return c
}

// start writes conf and runs carpd on r.
func (c *cluster) start(r *router, conf string) {
	c.t.Helper()
	conf = strings.ReplaceAll(conf, "@SOCK@", r.sock())
	if err := os.WriteFile(r.conf(), []byte(conf), 0o644); err != nil {
		c.t.Fatal(err)
	}
	p, err := r.host.StartWith(lab.StartOptions{LogFile: filepath.Join(r.dir, "carpd.log")}, carpdBin, "-c", r.conf())
	if err != nil {
		c.t.Fatal(err)
	}
	r.proc = p
	c.t.Cleanup(func() {
		if c.t.Failed() {
			c.t.Logf("--- %s log:\n%s", r.name, p.Output())
		}
	})
	c.waitFor(5*time.Second, r.name+" control socket", func() bool {
		_, err := daemon.Call(r.sock(), daemon.Request{Method: "status"})
		return err == nil
	})
}

// crash kills carpd with SIGKILL and drops r's links, like a power cut.
func (c *cluster) crash(r *router) {
	c.t.Helper()
	r.proc.Kill()
	for _, lk := range r.links {
		if err := lk.SetUp(false); err != nil {
			c.t.Fatal(err)
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (c *cluster) stop(r *router) {
	c.t.Helper()
	if err := r.proc.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	if err := r.proc.Wait(5 * time.Second); err != nil {
		c.t.Fatalf("%s did not stop cleanly: %v", r.name, err)
	}
}

func (c *cluster) status(r *router) daemon.Status {
	c.t.Helper()
	raw, err := daemon.Call(r.sock(), daemon.Request{Method: "status"})
	if err != nil {
		c.t.Fatalf("%s status: %v", r.name, err)
	}
	var st daemon.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		c.t.Fatal(err)
	}
	return st
}

// state returns the state of vhid on iface, or "" when not configured.
func (c *cluster) state(r *router, iface string, vhid uint8) string {
	raw, err := daemon.Call(r.sock(), daemon.Request{Method: "status"})
	if err != nil {
		return "unreachable"
	}
	var st daemon.Status
	if json.Unmarshal(raw, &st) != nil {
		return ""
	}
	for _, v := range st.VHIDs {
		if v.Interface == iface && v.VHID == vhid {
			return v.State
		}
	}
	return ""
}

// waitFor polls cond every 20 ms until it holds or d passes.
func (c *cluster) waitFor(d time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("timed out after %v waiting for %s", d, what)
}

// waitHearing waits until r is BACKUP and has heard the master's adverts.
func (c *cluster) waitHearing(r *router, iface string, vhid uint8, d time.Duration) {
	c.t.Helper()
	c.waitFor(d, fmt.Sprintf("%s %s vhid %d BACKUP hearing a master", r.name, iface, vhid), func() bool {
		for _, v := range c.status(r).VHIDs {
			if v.Interface == iface && v.VHID == vhid {
				return v.State == "BACKUP" && v.Counters.AdvertsReceived > 0
			}
		}
		return false
	})
}

func (c *cluster) waitState(r *router, iface string, vhid uint8, want string, d time.Duration) {
	c.t.Helper()
	c.waitFor(d, fmt.Sprintf("%s %s vhid %d %s (now %s)", r.name, iface, vhid, want, c.state(r, iface, vhid)),
		func() bool { return c.state(r, iface, vhid) == want })
}

// hasAddr reports whether r has addr (e.g. "10.0.1.1/24") on iface.
func (c *cluster) hasAddr(r *router, iface, addr string) bool {
	c.t.Helper()
	addrs, err := r.host.Addrs(iface)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, a := range addrs {
		if a == addr {
			return true
		}
	}
	return false
}

// holders returns the running routers that have addr on iface. A crashed
// router (carpd SIGKILLed, links down) keeps whatever it had: unreachable.
func (c *cluster) holders(iface, addr string) []string {
	var out []string
	for _, r := range c.routers {
		if r.proc == nil || exited(r.proc) {
			continue
		}
		if c.hasAddr(r, iface, addr) {
			out = append(out, r.name)
		}
	}
	return out
}

func exited(p *lab.Proc) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

func (c *cluster) onlyHolder(r *router, iface, addr string) {
	c.t.Helper()
	if h := c.holders(iface, addr); len(h) != 1 || h[0] != r.name {
		c.t.Fatalf("%s held by %v, want only %s", addr, h, r.name)
	}
}

func (c *cluster) probe(target string) *lab.Probe {
	c.t.Helper()
	p, err := c.client.StartProbe(netip.MustParseAddr(target), 10*time.Millisecond, 2*time.Minute)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { p.Stop() })
	return p
}

func (c *cluster) run(h *lab.Host, args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Run(ctx, args...)
	if err != nil {
		c.t.Fatalf("%v: %v", args, err)
	}
	return out
}

// vhidConf renders a carpd config with one vhid section per entry.
type vhidConf struct {
	iface, password string
	vhid            int
	advbase         int
	advskew         int
	addrs, peers    []string
	preempt         bool
	extra           string
}

func confText(preempt bool, vs ...vhidConf) string {
	var b strings.Builder
	p := 0
	if preempt {
		p = 1
	}
	fmt.Fprintf(&b, "config carpd 'global'\n\toption preempt '%d'\n\toption log_level 'debug'\n\toption control_socket '@SOCK@'\n\n", p)
	for i, v := range vs {
		fmt.Fprintf(&b, "config vhid 'v%d'\n\toption interface '%s'\n\toption vhid '%d'\n\toption advbase '%d'\n\toption advskew '%d'\n",
			i, v.iface, v.vhid, v.advbase, v.advskew)
		if v.password != "" {
			fmt.Fprintf(&b, "\toption password '%s'\n", v.password)
		}
		for _, a := range v.addrs {
			fmt.Fprintf(&b, "\tlist address '%s'\n", a)
		}
		for _, a := range v.peers {
			fmt.Fprintf(&b, "\tlist peer '%s'\n", a)
		}
		b.WriteString(v.extra)
		b.WriteString("\n")
	}
	return b.String()
}
