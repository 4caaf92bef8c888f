package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/lab"
)

// Interop with ucarp 1.5.2 (docs/carp-protocol.md#interoperability): ucarp
// speaks the same CARP wire format and HMAC, but it never touches addresses
// itself; it runs an upscript on MASTER and a downscript on BACKUP. Its
// adverts come from 00:00:5e:00:00:VHID (5th octet 0) and it reads them
// through libpcap with a 1 s capture timeout, so it reacts up to a second
// late: the waits below are generous. ucarp supports a single IPv4 VIP only,
// hence vip4 alone.

// requireTool returns the path of the program name, or skips the test when
// it is not installed. With CARPD_REQUIRE_NETNS=1 (CI) it fails instead, so
// that CI cannot pass by skipping.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	// Root's PATH has the sbin directories, a user's may not.
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CARPD_REQUIRE_NETNS") == "1" {
		t.Fatalf("%s is not installed (CARPD_REQUIRE_NETNS=1)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

// ucarpConf is the part of a ucarp command line that varies per test; the
// rest (vhid 1, password "secret", VIP 10.0.1.1) matches lanVHID.
type ucarpConf struct {
	srcip   string // the router's own address on lan
	advbase int
	advskew int
	preempt bool
}

// ucarpScripts writes the up/down scripts ucarp runs as
// `script <ifname> <vip>`; both append a line to scripts.log.
func ucarpScripts(t *testing.T, dir string) (up, down string) {
	t.Helper()
	up, down = filepath.Join(dir, "vip-up.sh"), filepath.Join(dir, "vip-down.sh")
	logf := filepath.Join(dir, "scripts.log")
	upText := fmt.Sprintf("#!/bin/sh\necho \"$(date +%%T.%%N) up $*\" >> %q\nexec ip addr add \"$2/24\" dev \"$1\"\n", logf)
	// At start ucarp runs the downscript even though the VIP is not there.
	downText := fmt.Sprintf("#!/bin/sh\necho \"$(date +%%T.%%N) down $*\" >> %q\nip addr del \"$2/24\" dev \"$1\" 2>/dev/null\nexit 0\n", logf)
	for path, text := range map[string]string{up: upText, down: downText} {
		if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return up, down
}

// scriptLog returns what r's ucarp scripts logged so far.
func scriptLog(r *router) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "scripts.log"))
	return string(b)
}

// startUcarp runs ucarp in the foreground on r as its router process, so
// c.crash, holders and the lab's cleanup treat it like a carpd.
func (c *cluster) startUcarp(bin string, r *router, u ucarpConf) {
	c.t.Helper()
	up, down := ucarpScripts(c.t, r.dir)
	args := []string{bin,
		"--interface=lan", "--srcip=" + u.srcip, "--vhid=1", "--pass=secret", "--addr=10.0.1.1",
		"--upscript=" + up, "--downscript=" + down, "--shutdown",
		fmt.Sprintf("--advbase=%d", u.advbase), fmt.Sprintf("--advskew=%d", u.advskew),
	}
	if u.preempt {
		args = append(args, "--preempt")
	}
	p, err := r.host.StartWith(lab.StartOptions{LogFile: filepath.Join(r.dir, "ucarp.log")}, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	r.proc = p
	c.t.Cleanup(func() {
		if c.t.Failed() {
			// The lab logs ucarp's own output.
			c.t.Logf("--- %s ucarp scripts:\n%s", r.name, scriptLog(r))
		}
	})
	// ucarp opens its pcap handle and raw socket at once; give it a moment
	// and make sure it did not refuse the command line.
	time.Sleep(300 * time.Millisecond)
	if exited(p) {
		c.t.Fatalf("ucarp on %s exited at start: %v\n%s", r.name, p.Wait(time.Second), p.Output())
	}
}

// ucarpRejected returns the lines in which ucarp on r logged a packet it
// dropped as invalid (its messages: "Bad TTL", "Bad version", "Bad IP
// checksum", "Bad digest ...").
func ucarpRejected(r *router) []string {
	var bad []string
	for _, line := range strings.Split(r.proc.Output(), "\n") {
		if strings.Contains(line, "Bad ") {
			bad = append(bad, line)
		}
	}
	return bad
}

// clientReaches reports whether the client gets an answer from target within 1 s.
func (c *cluster) clientReaches(target string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := c.client.Run(ctx, "ping", "-n", "-c", "1", "-W", "1", target)
	return err == nil
}

// waitClientReaches waits until the client reaches target.
func (c *cluster) waitClientReaches(target string, d time.Duration) {
	c.t.Helper()
	c.waitFor(d, "client to ping "+target, func() bool { return c.clientReaches(target) })
}

// waitLanAddr waits until r has (want true) or lacks (want false) addr on lan.
func (c *cluster) waitLanAddr(r *router, addr string, want bool, d time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	what := fmt.Sprintf("%s to have %s", r.name, addr)
	if !want {
		what = fmt.Sprintf("%s to drop %s", r.name, addr)
	}
	c.waitFor(d, what, func() bool { return c.hasAddr(r, "lan", addr) == want })
	return time.Since(start)
}

// vhid1Status returns r's carpd status of vhid 1 on lan.
func (c *cluster) vhid1Status(r *router) carp.Status {
	c.t.Helper()
	for _, v := range c.status(r).VHIDs {
		if v.Interface == "lan" && v.VHID == 1 {
			return v.Status
		}
	}
	c.t.Fatalf("%s: no lan vhid 1 in status", r.name)
	return carp.Status{}
}

// noBadRx reports whether carpd dropped none of what it received as bad.
func noBadRx(k carp.Counters) bool {
	return k.BadHMAC == 0 && k.BadChecksum == 0 && k.BadTTL == 0 && k.BadVersion == 0
}

// TestInteropCarpdMasterUcarpBackup: carpd is master and ucarp, slower,
// stays backup, which shows ucarp accepts carpd's adverts (HMAC included:
// otherwise it would take over after its master-down time). When carpd
// crashes, ucarp takes over; when carpd comes back with preempt it hears
// ucarp's adverts (so carpd accepts ucarp's HMAC), preempts, and ucarp
// yields and runs its downscript.
func TestInteropCarpdMasterUcarpBackup(t *testing.T) {
	ucarp := requireTool(t, "ucarp")
	c := newCluster(t, 2)
	r1, r2 := c.routers[0], c.routers[1]
	c.start(r1, confText(false, lanVHID(0)))
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.startUcarp(ucarp, r2, ucarpConf{srcip: "10.0.1.3", advbase: 1, advskew: 100})

	// ucarp's master-down time is 3.39 s plus up to 1 s of pcap latency:
	// wait well past it. Had it rejected carpd's adverts, it would be
	// master by now.
	time.Sleep(6 * time.Second)
	st := c.vhid1Status(r1)
	if st.State != "MASTER" || st.Counters.AdvertsSent < 5 || st.Counters.Transitions != 2 || !noBadRx(st.Counters) {
		t.Fatalf("carpd after 6 s with ucarp as backup: %+v", st)
	}
	c.onlyHolder(r1, "lan", vip4)
	if log := scriptLog(r2); strings.Contains(log, " up ") {
		t.Fatalf("ucarp ran its upscript while carpd was master:\n%s", log)
	}
	if bad := ucarpRejected(r2); len(bad) > 0 {
		t.Fatalf("ucarp rejected carpd's adverts:\n%s", strings.Join(bad, "\n"))
	}
	c.waitClientReaches("10.0.1.1", 3*time.Second)

	// carpd loses power: ucarp takes over after its master-down time.
	start := time.Now()
	c.crash(r1)
	c.waitLanAddr(r2, vip4, true, 8*time.Second)
	t.Logf("ucarp took over %v after the crash", time.Since(start))
	c.waitClientReaches("10.0.1.1", 5*time.Second)

	// carpd comes back, faster and with preempt: it hears ucarp, preempts,
	// and ucarp yields.
	time.Sleep(time.Second)
	if err := r1.links["lan"].SetUp(true); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	c.start(r1, confText(true, lanVHID(0)))
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	t.Logf("carpd master again %v after restart", time.Since(start))
	st = c.vhid1Status(r1)
	if st.Counters.AdvertsReceived == 0 || !noBadRx(st.Counters) {
		t.Fatalf("carpd did not hear ucarp cleanly: %+v", st)
	}
	last := c.status(r1).Transitions
	if len(last) == 0 || !strings.Contains(last[len(last)-1].Reason, "preempting less frequent master 10.0.1.3") {
		t.Fatalf("carpd did not preempt ucarp: %+v", last)
	}
	d := c.waitLanAddr(r2, vip4, false, 10*time.Second)
	t.Logf("ucarp dropped the VIP %v after carpd became master", d)
	c.onlyHolder(r1, "lan", vip4)
	c.waitClientReaches("10.0.1.1", 5*time.Second)
	// ucarp stays backup.
	time.Sleep(5 * time.Second)
	c.onlyHolder(r1, "lan", vip4)
	if st := c.vhid1Status(r1); st.State != "MASTER" || !noBadRx(st.Counters) {
		t.Fatalf("carpd after preempting ucarp: %+v", st)
	}
	if log := scriptLog(r2); !strings.HasSuffix(strings.TrimSpace(log), "down lan 10.0.1.1") {
		t.Fatalf("ucarp's last script was not the downscript:\n%s", log)
	}
	if bad := ucarpRejected(r2); len(bad) > 0 {
		t.Fatalf("ucarp rejected carpd's adverts:\n%s", strings.Join(bad, "\n"))
	}
}

// TestInteropUcarpMasterCarpdBackup: ucarp is master and carpd, slower,
// stays backup hearing it; when ucarp dies, carpd takes over.
func TestInteropUcarpMasterCarpdBackup(t *testing.T) {
	ucarp := requireTool(t, "ucarp")
	c := newCluster(t, 2)
	r1, r2 := c.routers[0], c.routers[1]
	c.startUcarp(ucarp, r1, ucarpConf{srcip: "10.0.1.2", advbase: 1, advskew: 0})
	c.waitLanAddr(r1, vip4, true, 8*time.Second)
	c.start(r2, confText(false, lanVHID(100)))
	c.waitHearing(r2, "lan", 1, 6*time.Second)

	// Past carpd's master-down time (3 * 1.39 s): still backup.
	time.Sleep(5 * time.Second)
	st := c.vhid1Status(r2)
	if st.State != "BACKUP" || st.Master != "10.0.1.2" || st.Counters.AdvertsReceived < 3 || !noBadRx(st.Counters) {
		t.Fatalf("carpd under a ucarp master: %+v", st)
	}
	if n := st.Counters.Transitions; n != 1 {
		t.Fatalf("carpd made %d transitions under a ucarp master, want 1 (INIT->BACKUP)", n)
	}
	c.onlyHolder(r1, "lan", vip4)
	c.waitClientReaches("10.0.1.1", 3*time.Second)

	start := time.Now()
	c.crash(r1)
	c.waitState(r2, "lan", 1, "MASTER", 6*time.Second)
	t.Logf("carpd took over %v after ucarp died", time.Since(start))
	c.onlyHolder(r2, "lan", vip4)
	c.waitClientReaches("10.0.1.1", 5*time.Second)
	if tr := c.status(r2).Transitions; !strings.Contains(tr[len(tr)-1].Reason, "master down") {
		t.Fatalf("takeover reason: %+v", tr)
	}
}

// TestInteropBowOutToUcarp: a carpd master stopped with SIGTERM sends a
// bow-out advert (advbase 255, advskew 255); ucarp takes that as "will time
// out anyway" and takes over at once, without waiting out master-down.
func TestInteropBowOutToUcarp(t *testing.T) {
	ucarp := requireTool(t, "ucarp")
	c := newCluster(t, 2)
	r1, r2 := c.routers[0], c.routers[1]
	c.start(r1, confText(false, lanVHID(0)))
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.startUcarp(ucarp, r2, ucarpConf{srcip: "10.0.1.3", advbase: 1, advskew: 100})
	// Let ucarp settle as backup (its start-up downscript, a few adverts).
	time.Sleep(3 * time.Second)
	c.onlyHolder(r1, "lan", vip4)

	start := time.Now()
	if err := r1.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.waitLanAddr(r2, vip4, true, 3*time.Second)
	took := time.Since(start)
	if err := r1.proc.Wait(5 * time.Second); err != nil {
		t.Fatalf("carpd did not stop cleanly: %v", err)
	}
	t.Logf("ucarp took over %v after SIGTERM", took)
	// master-down would be 3.39 s; 2 s leaves room for ucarp's 1 s pcap
	// latency and its upscript.
	if took > 2*time.Second {
		t.Fatalf("ucarp took over %v after the bow-out, want < 2 s", took)
	}
	if c.hasAddr(r1, "lan", vip4) {
		t.Fatal("stopped carpd kept its VIP")
	}
	// ucarp's log line for "the master advertises too slowly to live".
	if out := r2.proc.Output(); !strings.Contains(out, "going to time out") {
		t.Fatalf("ucarp did not take the bow-out as one:\n%s", out)
	}
	if bad := ucarpRejected(r2); len(bad) > 0 {
		t.Fatalf("ucarp rejected carpd's adverts:\n%s", strings.Join(bad, "\n"))
	}
	c.waitClientReaches("10.0.1.1", 5*time.Second)
}
