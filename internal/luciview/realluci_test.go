//go:build linux

package luciview

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// luciSrcEnv points at a LuCI checkout (a tree with
// modules/luci-base/htdocs/luci-static/resources/luci.js).
const luciSrcEnv = "CARPD_LUCI_SRC"

// realLuci serves carpd's views inside a LuCI checkout's own JavaScript,
// with the fake router's /ubus behind it.
type realLuci struct {
	*fakeRouter
	resources string // the checkout's luci-static/resources
	page      []byte
}

func (h *realLuci) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch p := req.URL.Path; {
	case p == "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(h.page)
	case strings.HasPrefix(p, "/luci-static/resources/view/carpd/"):
		http.ServeFile(w, req, filepath.Join(viewsDir, filepath.FromSlash(p)))
	case strings.HasPrefix(p, "/luci-static/resources/") && !strings.Contains(p, ".."):
		http.ServeFile(w, req, filepath.Join(h.resources, filepath.FromSlash(strings.TrimPrefix(p, "/luci-static/resources/"))))
	case req.Method == http.MethodPost && (p == "/ubus" || strings.HasPrefix(p, "/ubus/") || strings.Contains(p, "/admin/ubus")):
		h.ubus(w, req)
	default:
		h.fakeRouter.ServeHTTP(w, req)
	}
}

// realResult is what testdata/real-luci.html reports.
type realResult struct {
	Errors   []string `json:"errors"`
	Alerts   []string `json:"alerts"`
	Text     string   `json:"text"`
	VHIDRows int      `json:"vhidRows"`
	Tabs     []string `json:"tabs"`
	Options  []string `json:"options"`
	Elements int      `json:"elements"`
	Fired    int      `json:"fired"`
}

// runRealLuci loads view (status or config) with LuCI's own luci.js,
// ui.js, form.js, rpc.js and uci.js from the checkout at src.
func runRealLuci(t *testing.T, src, view string, edit func(*fakeRouter)) realResult {
	t.Helper()
	bin := findChromium(t)
	res := filepath.Join(src, "modules/luci-base/htdocs/luci-static/resources")
	tmpl, err := os.ReadFile("testdata/real-luci.html")
	if err != nil {
		t.Fatal(err)
	}
	// As a theme's header and view.ut do; promis.min.js is gone from
	// newer checkouts, so load what exists.
	var scripts strings.Builder
	for _, js := range []string{"promis.min.js", "cbi.js", "luci.js"} {
		if _, err := os.Stat(filepath.Join(res, js)); err == nil {
			fmt.Fprintf(&scripts, "<script src=\"/luci-static/resources/%s\"></script>\n", js)
		}
	}
	page := strings.ReplaceAll(strings.ReplaceAll(string(tmpl), "@SCRIPTS@", scripts.String()), "@VIEW@", view)
	r := newFakeRouter(t)
	if edit != nil {
		edit(r)
	}
	ln := serveHandler(t, &realLuci{fakeRouter: r, resources: res, page: []byte(page)})
	exited, out := chromium(t, bin, nil, ln+"/")
	var raw json.RawMessage
	select {
	case raw = <-r.result:
	case <-exited:
		t.Fatalf("chromium exited before the %s page reported; it said:\n%s", view, out())
	case <-time.After(40 * time.Second):
		t.Fatalf("no result from the %s page within 40 s; chromium said:\n%s", view, out())
	}
	var got realResult
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("result %s: %v", raw, err)
	}
	if len(got.Errors) > 0 || len(got.Alerts) > 0 {
		t.Errorf("LuCI reported errors on the %s page:\n%s\nalerts: %q", view, strings.Join(got.Errors, "\n"), got.Alerts)
	}
	return got
}

// TestRealLuCI loads both views into the JavaScript of a real LuCI
// checkout named by CARPD_LUCI_SRC (skipped without it; none of LuCI's
// code is in this repository), with /ubus answered as in the other tests:
// the pages must render without an error (the configuration page once
// threw "Tab already declared" there, which the stand-in accepted), and a
// status reply made of markup must stay text.
func TestRealLuCI(t *testing.T) {
	src := os.Getenv(luciSrcEnv)
	if src == "" {
		t.Skipf("%s is not set: the views are not checked against a real LuCI (point it at a LuCI checkout)", luciSrcEnv)
	}
	if _, err := os.Stat(filepath.Join(src, "modules/luci-base/htdocs/luci-static/resources/luci.js")); err != nil {
		t.Fatalf("%s=%s is not a LuCI checkout: %v", luciSrcEnv, src, err)
	}

	t.Run("status", func(t *testing.T) {
		got := runRealLuci(t, src, "status", nil)
		if got.VHIDRows != 2 {
			t.Errorf("%d vhid rows, want 2; the page shows: %s", got.VHIDRows, got.Text)
		}
		mustContain(t, "status page", got.Text, "lan (br-lan)", "eth1 vhid 2", "10.254.0.2 (router-b)",
			"+1 wan_ping (group wan): 0 of 1 targets answered for 3 rounds", "Split brain", "198.51.100.1: 4.2 ms, 1.1% lost",
			"DHCP leases12 in /tmp/dhcp.leases", "Configuration sync", "This router is the primary", "dhcp (UCI)in sync", "missing here")
	})
	t.Run("config", func(t *testing.T) {
		got := runRealLuci(t, src, "config", nil)
		for _, tab := range []string{"general", "tuning", "flows", "follow"} {
			if !slices.Contains(got.Tabs, tab) {
				t.Errorf("no tab %q (tabs %q)", tab, got.Tabs)
			}
		}
		for _, o := range []string{"interface", "vhid", "advskew", "key", "protocol", "log_level", "target", "interval", "reliability", "command",
			"lease_sync", "leasefile", "config_role", "config", "file"} {
			if !slices.Contains(got.Options, o) {
				t.Errorf("no option %q (options %q)", o, got.Options)
			}
		}
		for _, o := range []string{"control_socket", "state_file", "ubus_socket", "hotplug_call", "config_dir", "reload_command"} {
			if slices.Contains(got.Options, o) {
				t.Errorf("the form offers %q", o)
			}
		}
	})
	t.Run("xss", func(t *testing.T) {
		got := runRealLuci(t, src, "status", func(r *fakeRouter) { poison(r.status) })
		if got.Elements != 0 || got.Fired != 0 {
			t.Errorf("the markup made %d elements and ran %d handlers", got.Elements, got.Fired)
		}
		if !strings.Contains(got.Text, xssPayload+"reason") {
			t.Errorf("the page does not show the reason as text: %s", got.Text)
		}
	})
}
