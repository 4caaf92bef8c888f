//go:build linux

package luciview

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/daemon"
)

var updateScreenshots = flag.Bool("update-screenshots", os.Getenv("CARPD_UPDATE_SCREENSHOTS") == "1",
	"write docs/luci-status.png and docs/luci-config.png")

// fixedNow is the browser's clock in the scenarios: ten o'clock on the day
// of testdata/status.json.
// fixedNow is the "now" of the status fixture.
var fixedNow = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

const viewsDir = "../../package/luci-app-carpd/htdocs"

// call is one ubus call the page made through /ubus.
type call struct {
	Object string         `json:"object"`
	Method string         `json:"method"`
	Params map[string]any `json:"params"`
}

// fakeRouter is uhttpd's /ubus with carpd and rpcd's uci object behind it,
// plus the files of the test page.
type fakeRouter struct {
	t      *testing.T
	status map[string]any // what `carpd status` answers; maintenance changes it
	uci    map[string]any

	mu     sync.Mutex // guards calls and status
	calls  []call
	result chan json.RawMessage
}

func newFakeRouter(t *testing.T) *fakeRouter {
	r := &fakeRouter{t: t, result: make(chan json.RawMessage, 4)}
	readJSON(t, "testdata/status.json", &r.status)
	readJSON(t, "testdata/uci-carpd.json", &r.uci)
	return r
}

func readJSON(t *testing.T, name string, v any) {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func (r *fakeRouter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch p := req.URL.Path; {
	case p == "/":
		http.ServeFile(w, req, "testdata/harness.html")
	case p == "/luci-shim.js":
		http.ServeFile(w, req, "testdata/luci-shim.js")
	case strings.HasPrefix(p, "/luci-static/resources/view/carpd/"):
		http.ServeFile(w, req, filepath.Join(viewsDir, filepath.FromSlash(p)))
	case p == "/ubus" && req.Method == http.MethodPost:
		r.ubus(w, req)
	case p == "/result" && req.Method == http.MethodPost:
		b, _ := io.ReadAll(req.Body)
		select {
		case r.result <- b:
		default:
		}
	default:
		http.NotFound(w, req)
	}
}

// ubus answers JSON-RPC as uhttpd-mod-ubus does: "call" gets result
// [status] or [status, data] (docs/ubus-protocol.md#rpcd-and-luci), "list"
// an empty object, and a batch (an array of requests, as LuCI's rpc.js
// sends) an array of replies.
func (r *fakeRouter) ubus(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var reply any
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(trimmed, &batch); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		replies := []any{}
		for _, m := range batch {
			rep, ok := r.rpcMessage(m)
			if !ok {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			replies = append(replies, rep)
		}
		reply = replies
	} else {
		rep, ok := r.rpcMessage(body)
		if !ok {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		reply = rep
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(reply)
}

// rpcMessage answers one JSON-RPC request.
func (r *fakeRouter) rpcMessage(raw []byte) (map[string]any, bool) {
	var msg struct {
		ID     any               `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		return nil, false
	}
	if msg.Method == "list" {
		return map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": map[string]any{}}, true
	}
	if msg.Method != "call" || len(msg.Params) != 4 {
		return nil, false
	}
	var c call
	json.Unmarshal(msg.Params[1], &c.Object)
	json.Unmarshal(msg.Params[2], &c.Method)
	json.Unmarshal(msg.Params[3], &c.Params)
	r.mu.Lock()
	defer r.mu.Unlock()
	result := []any{0}
	switch c.Object + "." + c.Method {
	case "carpd.status":
		// A copy: the reply is encoded after the handover below moves on.
		b, _ := json.Marshal(r.status)
		result = append(result, json.RawMessage(b))
		// carpd confirms a handover under way by the next status.
		if w, ok := r.status["maintenance_wait"].(map[string]any); ok && w["state"] == "waiting" {
			r.status["maintenance_wait"] = map[string]any{"since": w["since"], "state": "done"}
		}
	case "carpd.maintenance":
		on, ok := c.Params["enable"].(bool)
		if !ok {
			result = []any{2} // UBUS_STATUS_INVALID_ARGUMENT
			break
		}
		r.setMaintenance(on)
		res := map[string]any{"maintenance": on, "persisted": true}
		if w, _ := c.Params["wait"].(float64); w > 0 {
			// The reply came before the handover was confirmed (the
			// caller's ubus timeout): the wait goes on, in status.
			wait := map[string]any{"since": "2026-05-04T09:59:50Z", "state": "waiting"}
			r.status["maintenance_wait"], res["wait"] = wait, wait
		} else {
			delete(r.status, "maintenance_wait")
		}
		result = append(result, res)
	case "carpd.resync", "uci.set", "uci.add", "uci.delete", "uci.apply":
	case "uci.get":
		switch c.Params["config"] {
		case "carpd":
			result = append(result, map[string]any{"values": r.uci})
		case "luci":
			// LuCI's own settings, which newer form.js loads with
			// every form.
			result = append(result, map[string]any{"values": map[string]any{
				"main": map[string]any{".anonymous": false, ".type": "core", ".name": "main", ".index": 0, "lang": "auto"}}})
		default:
			result = []any{4} // NOT_FOUND
		}
	case "uci.changes":
		// LuCI's own start-up; not one of the page's calls.
		return map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": []any{0, map[string]any{"changes": map[string]any{}}}}, true
	case "luci.getFeatures", "session.access":
		return map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": []any{0, map[string]any{}}}, true
	case "file.list":
		return map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": []any{4}}, true
	default:
		result = []any{3} // METHOD_NOT_FOUND
	}
	r.calls = append(r.calls, c)
	return map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": result}, true
}

// setMaintenance does what carpd does: every vhid demoted by 240, the
// masters hand over to the peer.
func (r *fakeRouter) setMaintenance(on bool) {
	r.status["demotion"].(map[string]any)["maintenance"] = on
	for _, v := range r.status["vhids"].([]any) {
		v := v.(map[string]any)
		if on {
			v["demotion"] = 240
			if v["state"] == "MASTER" {
				v["state"], v["master"], v["master_seen"] = "BACKUP", "192.168.1.3", "2026-05-04T09:59:59.9Z"
			}
		} else {
			v["demotion"] = 0
		}
	}
}

func (r *fakeRouter) takeCalls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// findChromium returns the browser, or skips (fails under
// CARPD_REQUIRE_NETNS=1, as CI sets).
func findChromium(t *testing.T) string {
	if p := os.Getenv("CARPD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CARPD_REQUIRE_NETNS") == "1" {
		t.Fatal("no chromium on PATH (apt-get install chromium); CARPD_REQUIRE_NETNS=1 forbids skipping")
	}
	t.Skip("no chromium on PATH (apt-get install chromium): the LuCI views are not tested")
	return ""
}

// serve starts the fake router on loopback.
func serve(t *testing.T, r *fakeRouter) string {
	return serveHandler(t, r)
}

// serveHandler serves h on loopback and returns its base URL.
func serveHandler(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// chromium runs the browser headless on url with extra flags, in a process
// group of its own, with its output in a file. It returns a channel closed
// when the browser exits and a function that reads its output. On cleanup
// the group (the browser and its helpers) is killed by its id and waited for.
func chromium(t *testing.T, bin string, extra []string, url string) (<-chan struct{}, func() string) {
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--no-first-run", "--disable-extensions", "--disable-sync",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir()}, extra...)
	cmd := exec.Command(bin, append(args, url)...)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LANG=en_US.UTF-8")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logPath := filepath.Join(t.TempDir(), "chromium.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logFile.Close()
	pgid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	})
	return done, func() string { b, _ := os.ReadFile(logPath); return string(b) }
}

// step is what the harness reports after each step of a scenario.
type step struct {
	Name          string `json:"name"`
	Calls         []call `json:"calls"`
	Notifications []struct {
		Cls  string `json:"cls"`
		Text string `json:"text"`
	} `json:"notifications"`
	Modal string       `json:"modal"`
	Facts *statusFacts `json:"facts"`
	Input *inputState  `json:"input"`
	Rows  []string     `json:"rows"`
	Vals  []string     `json:"values"`
	Opts  []string     `json:"options"`
	// The xss scenario: elements the markup made, handlers it ran, and
	// the page's text.
	Elements int      `json:"elements"`
	Fired    int      `json:"fired"`
	Text     string   `json:"text"`
	Tabs     []string `json:"tabs"`
	Hidden   []string `json:"hidden"`
}

type statusFacts struct {
	VHIDs []struct {
		Key   string `json:"key"`
		State string `json:"state"`
		Text  string `json:"text"`
	} `json:"vhids"`
	Global              string   `json:"global"`
	Sync                string   `json:"sync"`
	Transitions         []string `json:"transitions"`
	MaintenanceButton   string   `json:"maintenanceButton"`
	MaintenanceDisabled bool     `json:"maintenanceDisabled"`
	MaintenanceWait     string   `json:"maintenanceWait"`
	ResyncDisabled      bool     `json:"resyncDisabled"`
	Trackers            []struct {
		Key   string `json:"key"`
		State string `json:"state"`
		Text  string `json:"text"`
	} `json:"trackers"`
	Services []struct {
		Key   string `json:"key"`
		State string `json:"state"`
		Text  string `json:"text"`
	} `json:"services"`
	// Config: the configuration sync section; ConfigRows its rows.
	Config     string `json:"config"`
	ConfigRows []struct {
		Key   string `json:"key"`
		State string `json:"state"`
		Text  string `json:"text"`
	} `json:"configRows"`
	Alarm string `json:"alarm"`
}

type inputState struct {
	Invalid bool   `json:"invalid"`
	Error   string `json:"error"`
}

// runScenario opens the harness on page in the browser and returns its
// steps by name, with the calls the fake router saw.
func runScenario(t *testing.T, page string) (map[string]step, []call) {
	return runScenarioWith(t, page, nil)
}

// runScenarioWith is runScenario with the fake router's data changed by
// edit first.
func runScenarioWith(t *testing.T, page string, edit func(*fakeRouter)) (map[string]step, []call) {
	bin := findChromium(t)
	r := newFakeRouter(t)
	if edit != nil {
		edit(r)
	}
	base := serve(t, r)
	// The browser's clock is off by an hour: the page must count "since"
	// and "seen ago" from carpd's "now" (fixedNow in the fixture).
	exited, out := chromium(t, bin, nil, fmt.Sprintf("%s/?page=%s&mode=test&now=%d", base, page, fixedNow.Add(time.Hour).UnixMilli()))
	var raw json.RawMessage
	select {
	case raw = <-r.result:
	case <-exited:
		t.Fatalf("chromium exited before the %s page reported; it said:\n%s", page, out())
	case <-time.After(30 * time.Second):
		t.Fatalf("no result from the %s page within 30 s; chromium said:\n%s", page, out())
	}
	var res struct {
		Error string `json:"error"`
		Steps []step `json:"steps"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("result %s: %v", raw, err)
	}
	if res.Error != "" {
		t.Fatalf("the %s page failed: %s", page, res.Error)
	}
	steps := map[string]step{}
	for _, s := range res.Steps {
		steps[s.Name] = s
	}
	return steps, r.takeCalls()
}

func methods(calls []call) []string {
	var m []string
	for _, c := range calls {
		m = append(m, c.Object+"."+c.Method)
	}
	return m
}

func mustContain(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s: %q does not contain %q", what, got, w)
		}
	}
}

// TestLuciStatusPage renders the status page from testdata/status.json,
// polls, enters maintenance mode (confirming the dialog), resyncs and
// leaves maintenance mode, checking what the page shows and which ubus
// calls it makes.
func TestLuciStatusPage(t *testing.T) {
	steps, all := runScenario(t, "status")

	s := steps["rendered"]
	if s.Facts == nil {
		t.Fatalf("no facts after rendering: %+v", s)
	}
	if got := methods(s.Calls); !slices.Equal(got, []string{"carpd.status"}) {
		t.Errorf("rendering called %v, want carpd.status", got)
	}
	f := s.Facts
	if len(f.VHIDs) != 2 {
		t.Fatalf("%d vhid rows, want 2: %+v", len(f.VHIDs), f.VHIDs)
	}
	lan, wan := f.VHIDs[0], f.VHIDs[1]
	if lan.Key != "br-lan/1" || lan.State != "MASTER" || wan.Key != "eth1/2" || wan.State != "BACKUP" {
		t.Errorf("rows %s %s, %s %s; want br-lan/1 MASTER, eth1/2 BACKUP", lan.Key, lan.State, wan.Key, wan.State)
	}
	// Since (47m 29s before 10:00), master and when it was heard,
	// demotion, addresses, counters and errors.
	mustContain(t, "lan row", lan.Text, "lan (br-lan)", "MASTER", "for 3d 1h", "this router",
		"192.168.1.1/24", "fd00:1::1/64", "2850 / 4", "advbase 1, advskew 0")
	mustContain(t, "wan row", wan.Text, "wan (eth1)", "BACKUP", "for 47m 28s", "203.0.113.3", "seen 0s ago",
		"203.0.113.1/24", "12 / 2871", "advskew 100")
	// Why am I BACKUP: the demotion, the peer's next to it, and the
	// named sources with reason and since.
	mustContain(t, "wan demotion", wan.Text, "3 (peer 0)",
		"+2 mwan3 (group wan): set with demote --set --ttl 300, since 09:58:00, until 10:03:00",
		"+1 wan_ping (group wan): 0 of 1 targets answered for 3 rounds, since 09:12:31", "groups: carp, wan")
	mustContain(t, "lan demotion", lan.Text, "0 (peer 0)")
	if strings.Contains(lan.Text, "+1") || strings.Contains(lan.Text, "groups:") {
		t.Errorf("lan row shows sources or groups it has not: %q", lan.Text)
	}
	if len(f.Trackers) != 2 {
		t.Fatalf("tracker rows %+v, want 2", f.Trackers)
	}
	link, ping := f.Trackers[0], f.Trackers[1]
	if ping.Key != "wan_ping" || ping.State != "DOWN" || link.Key != "lan_up" || link.State != "UP" {
		t.Errorf("trackers %+v", f.Trackers)
	}
	mustContain(t, "ping tracker", ping.Text, "ping, group wan", "since 09:12:31", "1 (weight 1)",
		"0 of 1 targets answered for 3 rounds", "sendto: network is unreachable", "266397 rounds, 2797 bad",
		"198.51.100.1: 4.2 ms, 1.1% lost")
	mustContain(t, "interface tracker", link.Text, "interface, group carp", "network lan is up with an address and a default route",
		"since 2026-05-01 08:00:03", "0 (weight 1)")
	// The service roles: role, what they follow, the last action and
	// its error.
	if len(f.Services) != 2 || f.Services[0].Key != "dhcp" || f.Services[0].State != "MASTER" ||
		f.Services[1].Key != "ra" || f.Services[1].State != "BACKUP" {
		t.Fatalf("service rows %+v", f.Services)
	}
	mustContain(t, "dhcp service", f.Services[0].Text, "dnsmasq via rc", "lan", "start: ok", "at 09:40:05")
	mustContain(t, "ra service", f.Services[1].Text, "odhcpd via initd", "lan, wan", "stop: failed", "at 09:40:03",
		"exit status 1: odhcpd: not running")
	mustContain(t, "split-brain alarm", f.Alarm, "Split brain", "br-lan vhid 1, since 09:58:12")
	mustContain(t, "overview groups", f.Global, "Demotion groups carp: 0 wan: 3 +2 mwan3 (group wan)", "Split-brain alarms 1 since carpd started")
	// A maintenance wait under way when the page opens: the button waits.
	if f.MaintenanceButton != "Waiting for the peer…" || !f.MaintenanceDisabled ||
		f.MaintenanceWait != "waiting: Waiting for every vhid to settle and for the peer's flow table (2s)…" {
		t.Errorf("the wait of the fixture: button %q (disabled %v), %q", f.MaintenanceButton, f.MaintenanceDisabled, f.MaintenanceWait)
	}
	mustContain(t, "overview", f.Global, "version 0.1.0_git42~1a2b3c4-r1, pid 1873", "Running for 3d 1h",
		"Maintenance mode off", "manual 0, link 0, sync 0", "br-lan: link up", "eth1: link up")
	mustContain(t, "sync", f.Sync, "Sync interface eth2", "10.254.0.2 (router-b)", "established", "RTT 412µs",
		"Last acknowledgement 0s ago", "5120 local (3020 acknowledged, 37 pending), 1834 from the peer",
		"complete, 1834 flows received", "58% sent, 2100 flows left",
		"46.10 MiB sent, 9.00 MiB received (61210 / 40022 frames)", "Repaired 0 asked for again, 2 sent again on request, 0 stale deleted", "Dropped frames 1",
		"DHCP leases 12 in /tmp/dhcp.leases, 11 from the peer; 40 events sent, 37 received", "file written 9 times, last 48s ago",
		"Lease events of the peer refused: 1")
	// Configuration sync: per package or file, its state, the hashes on
	// each side (the first 12 digits), the last sync.
	mustContain(t, "config sync", f.Config, "This router is the primary", "Configuration records of the peer refused: 2")
	if len(f.ConfigRows) != 3 || f.ConfigRows[0].Key != "dhcp" || f.ConfigRows[0].State != "synced" ||
		f.ConfigRows[1].Key != "firewall" || f.ConfigRows[1].State != "conflict" ||
		f.ConfigRows[2].Key != "/etc/firewall.user" || f.ConfigRows[2].State != "error" {
		t.Fatalf("config sync rows %+v", f.ConfigRows)
	}
	mustContain(t, "dhcp config row", f.ConfigRows[0].Text, "dhcp (UCI)", "in sync", "5f2b1c0e9a8d", "19m 48s ago")
	mustContain(t, "firewall config row", f.ConfigRows[1].Text, "conflict", "edited since the last sync", "a1b2c3d4e5f6",
		"0f1e2d3c4b5a", "48m 0s ago")
	mustContain(t, "file config row", f.ConfigRows[2].Text, "/etc/firewall.user (file)", "error", "missing here", "never")
	if len(f.Transitions) != 5 || !strings.Contains(f.Transitions[0], "eth1 vhid 2 MASTER → BACKUP more frequent master 203.0.113.3") {
		t.Errorf("transitions (newest first) %q", f.Transitions)
	}
	if got := methods(steps["polled"].Calls); !slices.Equal(got, []string{"carpd.status"}) {
		t.Errorf("a poll called %v, want carpd.status", got)
	}
	// carpd has finished that wait by the next poll.
	if f := steps["polled"].Facts; f == nil || f.MaintenanceButton != "Enter maintenance mode" || f.MaintenanceDisabled || f.ResyncDisabled ||
		f.MaintenanceWait != "done: Back in service: every vhid is settled and the peer's flow table is here." {
		t.Errorf("after the poll: %+v", f)
	}

	// Maintenance asks first, and only the confirmation calls carpd.
	if s := steps["maintenance-asked"]; len(s.Calls) != 0 || !strings.Contains(s.Modal, "Enter maintenance mode?") {
		t.Errorf("the maintenance button called %v (want a confirmation first), modal %q", methods(s.Calls), s.Modal)
	}
	s = steps["maintenance-on"]
	// wait: LuCI's RPC timeout (20 s here, the default) less 5 s.
	if len(s.Calls) != 2 || s.Calls[0].Object != "carpd" || s.Calls[0].Method != "maintenance" ||
		s.Calls[0].Params["enable"] != true || s.Calls[0].Params["wait"] != 15.0 || s.Calls[1].Method != "status" {
		t.Errorf("confirming called %+v, want carpd maintenance {enable: true, wait: 15} then carpd status", s.Calls)
	}
	// The handover is not confirmed yet: the button waits, the overview
	// says what for.
	if s.Facts == nil || s.Facts.MaintenanceButton != "Waiting for the peer…" || !s.Facts.MaintenanceDisabled ||
		!strings.HasPrefix(s.Facts.MaintenanceWait, "waiting: Waiting for the peer to take over every vhid and to confirm the flow table (10s)") {
		t.Errorf("while the handover runs: %+v", s.Facts)
	}
	if len(s.Notifications) != 1 || !strings.Contains(s.Notifications[0].Text, "Maintenance mode is on") {
		t.Errorf("notifications %+v", s.Notifications)
	}
	s = steps["maintenance-confirmed"]
	if got := methods(s.Calls); !slices.Equal(got, []string{"carpd.status"}) {
		t.Errorf("the poll called %v", got)
	}
	if s.Facts == nil || s.Facts.VHIDs[0].State != "BACKUP" || s.Facts.MaintenanceButton != "Leave maintenance mode" ||
		s.Facts.MaintenanceDisabled || !strings.HasPrefix(s.Facts.MaintenanceWait, "done: Handover confirmed") ||
		!strings.Contains(s.Facts.Global, "Maintenance mode on") || !strings.Contains(s.Facts.VHIDs[0].Text, "240") {
		t.Errorf("after the handover the page shows %+v", s.Facts)
	}

	s = steps["resynced"]
	if len(s.Calls) != 2 || s.Calls[0].Object != "carpd" || s.Calls[0].Method != "resync" || len(s.Calls[0].Params) != 0 {
		t.Errorf("resync called %+v, want carpd resync {}", s.Calls)
	}
	s = steps["maintenance-off"]
	if len(s.Calls) < 1 || s.Calls[0].Method != "maintenance" || s.Calls[0].Params["enable"] != false || s.Calls[0].Params["wait"] != nil {
		t.Errorf("leaving maintenance called %+v, want carpd maintenance {enable: false}", s.Calls)
	}
	if s.Facts == nil || s.Facts.MaintenanceWait != "" {
		t.Errorf("after leaving maintenance mode the page still shows a handover: %+v", s.Facts)
	}

	// The server saw the same calls, and nothing else.
	want := []string{"carpd.status", "carpd.status", "carpd.maintenance", "carpd.status", "carpd.status", "carpd.resync",
		"carpd.status", "carpd.maintenance", "carpd.status"}
	if got := methods(all); !slices.Equal(got, want) {
		t.Errorf("ubus calls %v, want %v", got, want)
	}
}

// xssPayload is markup that runs a script if it is ever parsed as HTML.
const xssPayload = `<img src=x onerror="window.__xss=(window.__xss||0)+1"><b>bold</b>`

// timeFields are the status fields that must stay times.
var timeFields = map[string]bool{"now": true, "started": true, "since": true, "master_seen": true, "time": true, "last_ack": true, "expires": true}

// poison replaces every string of a status reply but the times with
// xssPayload and the field's name, and returns how many it replaced.
func poison(v any) int {
	n := 0
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if _, ok := x.(string); ok && !timeFields[k] {
				v[k] = xssPayload + k
				n++
			} else {
				n += poison(x)
			}
		}
	case []any:
		for i, x := range v {
			if _, ok := x.(string); ok {
				v[i] = xssPayload + "item"
				n++
			} else {
				n += poison(x)
			}
		}
	}
	return n
}

// TestLuciStatusPageXSS: the status page shows what carpd sends (interface
// names from the config, reasons, errors, peer names) as text. A reply
// whose every string is markup must create no element and run no handler,
// and the markup must be on the page as written.
func TestLuciStatusPageXSS(t *testing.T) {
	var n int
	steps, _ := runScenarioWith(t, "xss", func(r *fakeRouter) {
		n = poison(r.status)
		// Errors are null in the fixture; an interface that is down
		// shows its error.
		iface := r.status["interfaces"].([]any)[0].(map[string]any)
		iface["link_up"], iface["error"] = false, xssPayload+"if_error"
		r.status["vhids"].([]any)[0].(map[string]any)["error"] = xssPayload + "vhid_error"
		r.status["sync"].(map[string]any)["error"] = xssPayload + "sync_error"
	})
	if n < 20 {
		t.Fatalf("only %d strings poisoned", n)
	}
	s := steps["xss"]
	if s.Elements != 0 || s.Fired != 0 {
		t.Errorf("the markup made %d elements and ran %d handlers", s.Elements, s.Fired)
	}
	// Text the page shows as it came: the vhid's interface and network,
	// the master, an address, a transition's reason, the sync peer's
	// name, an interface error.
	// The trackers' names, types, groups, reasons, targets and errors, the
	// demotion sources' and the split brain's interface too.
	for _, k := range []string{"interface", "network", "master", "item", "reason", "peer_name", "vhid_error", "sync_error", "if_error", "name", "version", "rtt",
		"type", "group", "address", "error"} {
		if !strings.Contains(s.Text, xssPayload+k) {
			t.Errorf("the page does not show %q as text", xssPayload+k)
		}
	}
	if t.Failed() {
		t.Logf("page text: %s", s.Text)
	}
}

// TestLuciConfigPage types bad values into the configuration form (vhid
// 300, an invalid IP, weak sync keys, advskew 255): each is marked invalid
// and Save sends nothing; valid values are then saved as uci set calls.
func TestLuciConfigPage(t *testing.T) {
	steps, all := runScenario(t, "config")

	s := steps["rendered"]
	if got := methods(s.Calls); !slices.Equal(got, []string{"uci.get"}) || s.Calls[0].Params["config"] != "carpd" {
		t.Errorf("rendering called %+v, want uci get {config: carpd}", s.Calls)
	}
	if !slices.Equal(s.Rows, []string{"lan", "wan", "dhcp"}) {
		t.Errorf("grid rows %q, want lan, wan (vhids), dhcp (service)", s.Rows)
	}
	if !slices.Contains(s.Vals, "dnsmasq") || !slices.Contains(s.Opts, "master") || slices.Contains(s.Opts, "initscript") {
		t.Errorf("the service grid: values %q, options %q (want dnsmasq, master and no initscript)", s.Vals, s.Opts)
	}
	if got := steps["service-vhid"].Vals; !slices.Equal(got, []string{"lan=true", "wan=true",
		"nope=Expecting: the name of a vhid section", "wan_ping=Expecting: the name of a vhid section"}) {
		t.Errorf("service vhid checks %q", got)
	}
	// Paths that carpd (root) replaces or runs are set by root in the
	// file, not through LuCI.
	for _, o := range []string{"control_socket", "state_file", "ubus_socket", "hotplug_call"} {
		if slices.Contains(s.Opts, o) {
			t.Errorf("the form offers option %s", o)
		}
	}
	if !slices.Contains(s.Opts, "log_level") || !slices.Contains(s.Opts, "protocol") {
		t.Errorf("the form's options %q lack log_level or protocol", s.Opts)
	}
	if !slices.Equal(s.Tabs, []string{"general", "tuning", "flows", "follow"}) {
		t.Errorf("sync tabs %q, want general, tuning, flows, follow", s.Tabs)
	}
	// Lease and configuration sync: the options, and the paths carpd
	// writes or runs as root are set in the file only.
	for _, o := range []string{"lease_sync", "leasefile", "config_role", "config", "file"} {
		if !slices.Contains(s.Opts, o) {
			t.Errorf("the form lacks option %s (options %q)", o, s.Opts)
		}
	}
	for _, o := range []string{"config_dir", "reload_command"} {
		if slices.Contains(s.Opts, o) {
			t.Errorf("the form offers option %s", o)
		}
	}
	// What the parser refuses (internal/config ValidPackage, the file
	// rules), and lease files only where dnsmasq keeps them.
	if got, want := steps["sync-follow"].Vals, []string{"config firewall=true", "config dhcp_2-x=true",
		"config carpd=Package carpd is never synced: its options are each router's own",
		"config Fire wall=Expecting: a UCI package name (a-z, 0-9, _ and -)",
		"config ../shadow=Expecting: a UCI package name (a-z, 0-9, _ and -)",
		"file /etc/firewall.user=true",
		`file /etc/../root/x=Expecting: an absolute path under /etc/, without blanks, "." or ".."`,
		`file etc/x=Expecting: an absolute path under /etc/, without blanks, "." or ".."`,
		`file /root/.ssh/authorized_keys=Expecting: an absolute path under /etc/, without blanks, "." or ".."`,
		"file /etc/carpd/hooks/x=carpd's own files are never synced",
		"file /etc/config/carpd=carpd's own files are never synced",
		`file /etc/a b=Expecting: an absolute path under /etc/, without blanks, "." or ".."`,
		`file /etc/x/=Expecting: an absolute path under /etc/, without blanks, "." or ".."`,
		"leasefile /tmp/dhcp.leases=true", "leasefile /var/lib/misc/dnsmasq.leases=true",
		"leasefile /etc/shadow=Expecting: an absolute path under /tmp/ or /var/",
		"leasefile tmp/x=Expecting: an absolute path under /tmp/ or /var/",
		"leasefile /tmp/../etc/shadow=Expecting: an absolute path under /tmp/ or /var/"}; !slices.Equal(got, want) {
		t.Errorf("sync checks\n got %q\nwant %q", got, want)
	}
	// The trackers show the options of their type only.
	if want := []string{"wan_ping.command", "wan_ping.path", "wan_ping.name",
		"vpn_check.target", "vpn_check.device", "vpn_check.path", "vpn_check.name", "vpn_check.reliability"}; !sameSet(s.Hidden, want) {
		t.Errorf("hidden tracker options %q, want %q", s.Hidden, want)
	}
	for _, v := range []string{"lan", "1", "wan", "100", "eth2", "10.254.0.2", "2mbit", "tcp", "udp",
		"198.51.100.1", "/usr/bin/vpn-check --quiet", "5", "primary", "firewall", "dhcp", "/etc/firewall.user"} {
		if !slices.Contains(s.Vals, v) {
			t.Errorf("the form does not show %q (values %q)", v, s.Vals)
		}
	}

	for _, bad := range []struct{ step, msg string }{
		{"vhid-300", "value between 1 and 255"},
		{"vhid-abc", "positive integer value"},
		{"peer-bad-ip", "valid IP address"},
		{"peer-prefix", "valid IP address"},
		{"key-short", "at least 16 characters"},
		{"key-repeated", "repeats a chunk of 7 characters"},
		{"key-sequence", "The hex key"},
		{"advskew-255", "value between 0 and 254"},
		{"track-interval-small", "at least 0.05 and at most 3600 seconds"},
		{"track-interval-text", "seconds such as 1, 0.2 or 1.5"},
		{"track-target-ip", "valid IP address"},
		{"track-target-multicast", "unicast address"},
		{"track-reliability", "at most the number of targets (1)"},
		{"track-timeout", "at most interval × down (0.6 s)"},
		{"track-down", "value between 1 and 1000"},
		{"track-group", "group name of 1-15 letters"},
		{"track-weight", "value between 1 and 255"},
		{"track-file-path", "an absolute path"},
		{"service-name", "a service name"},
	} {
		s := steps[bad.step]
		if s.Input == nil || !s.Input.Invalid || !strings.Contains(s.Input.Error, bad.msg) {
			t.Errorf("%s: input %+v, want invalid with %q", bad.step, s.Input, bad.msg)
		}
		if len(s.Calls) != 0 {
			t.Errorf("%s: Save sent %v despite the invalid input", bad.step, methods(s.Calls))
		}
		if len(s.Notifications) != 1 || !strings.Contains(s.Notifications[0].Text, "Unable to save") {
			t.Errorf("%s: notifications %+v, want one 'Unable to save'", bad.step, s.Notifications)
		}
	}

	// A type change shows the new type's options and hides the old one's.
	if want := []string{"wan_ping.command", "wan_ping.path", "wan_ping.name", "vpn_check.target", "vpn_check.device",
		"vpn_check.command", "vpn_check.name", "vpn_check.reliability", "vpn_check.weight"}; !sameSet(steps["track-file-path"].Hidden, want) {
		t.Errorf("hidden after the type change %q, want %q", steps["track-file-path"].Hidden, want)
	}
	// The group names the parser takes (internal/config ValidGroup).
	if got, want := steps["vhid-group"].Vals, []string{"wan=true", "wan-2_X=true",
		"sixteen-chars-xx=Expecting: a group name of 1-15 letters, digits, _ or -",
		"wan link=Expecting: a group name of 1-15 letters, digits, _ or -",
		"wän=Expecting: a group name of 1-15 letters, digits, _ or -"}; !slices.Equal(got, want) {
		t.Errorf("vhid group checks %q, want %q", got, want)
	}

	s = steps["valid"]
	if s.Input == nil || s.Input.Invalid || len(s.Notifications) != 0 {
		t.Errorf("a valid passphrase: input %+v, notifications %+v", s.Input, s.Notifications)
	}
	sets := map[string]map[string]any{}
	for _, c := range s.Calls {
		if c.Object == "uci" && c.Method == "set" {
			if c.Params["config"] != "carpd" {
				t.Errorf("uci set on %v", c.Params["config"])
			}
			sets[c.Params["section"].(string)] = c.Params["values"].(map[string]any)
		}
	}
	want := map[string]map[string]any{
		"lan":       {"vhid": "42"},
		"wan":       {"advskew": "200"},
		"sync":      {"peer": "10.0.0.2", "key": "correct horse battery staple", "config_role": "secondary"},
		"wan_ping":  {"interval": "0.2"},
		"vpn_check": {"type": "file", "path": "/var/run/vpn.demote"},
	}
	if fmt.Sprint(sets) != fmt.Sprint(want) {
		t.Errorf("saving wrote %v, want %v (calls %+v)", sets, want, s.Calls)
	}
	if got := methods(steps["apply"].Calls); !slices.Contains(got, "uci.apply") {
		t.Errorf("Save & Apply called %v, want uci apply", got)
	}
	// The script tracker's options that a file tracker does not use go.
	var deleted []string
	for _, c := range s.Calls {
		if c.Object == "uci" && c.Method == "delete" {
			deleted = append(deleted, fmt.Sprintf("%v %v", c.Params["section"], c.Params["options"]))
		}
	}
	if want := []string{"vpn_check [command weight]"}; !slices.Equal(deleted, want) {
		t.Errorf("saving deleted %q, want %q", deleted, want)
	}
	if n := strings.Count(strings.Join(methods(all), " "), "uci.set"); n != 5 {
		t.Errorf("the server saw %d uci set calls, want 5 (%v)", n, methods(all))
	}
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestLuciStatusFixture keeps testdata/status.json honest: it must decode
// into daemon.Status with no unknown field, and carry every field the
// daemon emits, so the status page is tested against carpd's real reply.
func TestLuciStatusFixture(t *testing.T) {
	b, err := os.ReadFile("testdata/status.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var st daemon.Status
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("testdata/status.json is not a daemon.Status: %v", err)
	}
	again, _ := json.Marshal(st)
	var a, c map[string]any
	json.Unmarshal(b, &a)
	json.Unmarshal(again, &c)
	if missing := missingKeys("", c, a); len(missing) > 0 {
		t.Errorf("testdata/status.json lacks fields carpd sends: %v", missing)
	}
	if len(st.VHIDs) != 2 || st.VHIDs[0].State != "MASTER" || st.VHIDs[1].State != "BACKUP" || !st.Sync.Bulk.Serving {
		t.Errorf("the fixture should have a MASTER and a BACKUP vhid and a bulk transfer under way")
	}
}

// missingKeys lists the keys of want (recursively) that got lacks.
func missingKeys(prefix string, want, got any) []string {
	var out []string
	switch w := want.(type) {
	case map[string]any:
		g, _ := got.(map[string]any)
		for k, v := range w {
			if _, ok := g[k]; !ok {
				out = append(out, prefix+k)
				continue
			}
			out = append(out, missingKeys(prefix+k+".", v, g[k])...)
		}
	case []any:
		g, _ := got.([]any)
		for i := range min(len(w), len(g)) {
			out = append(out, missingKeys(fmt.Sprintf("%s%d.", prefix, i), w[i], g[i])...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestLuciScreenshots renders both pages for docs/ with
// -update-screenshots (or CARPD_UPDATE_SCREENSHOTS=1); otherwise it checks
// the committed ones are real PNGs.
func TestLuciScreenshots(t *testing.T) {
	docs := map[string]string{"status": "../../docs/luci-status.png", "config": "../../docs/luci-config.png"}
	if !*updateScreenshots {
		for _, p := range docs {
			f, err := os.Open(p)
			if err != nil {
				t.Fatalf("%v (make them with go test ./internal/luciview -run Screenshots -update-screenshots)", err)
			}
			cfg, err := png.DecodeConfig(f)
			f.Close()
			if err != nil || cfg.Width < 800 || cfg.Height < 600 {
				t.Errorf("%s: %v, %dx%d", p, err, cfg.Width, cfg.Height)
			}
		}
		return
	}
	bin := findChromium(t)
	for page, dst := range docs {
		r := newFakeRouter(t)
		base := serve(t, r)
		tmp := filepath.Join(t.TempDir(), page+".png")
		size := map[string]string{"status": "1200,2300", "config": "1200,2300"}[page]
		exited, out := chromium(t, bin, []string{"--screenshot=" + tmp, "--window-size=" + size, "--virtual-time-budget=10000"},
			fmt.Sprintf("%s/?page=%s&mode=shot&now=%d", base, page, fixedNow.UnixMilli()))
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("chromium --screenshot did not finish in 30 s:\n%s", out())
		}
		b, err := os.ReadFile(tmp)
		if err != nil {
			t.Fatalf("no screenshot of %s: %v\n%s", page, err, out())
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", dst, len(b))
	}
}
