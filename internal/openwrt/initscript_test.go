//go:build linux

package openwrt

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runInitStart sources package/carpd/files/carpd.init with rc.common's and
// procd's functions replaced by ones that record what they are asked, and
// runs start_service with a stand-in carpd that prints stderr and exits
// with code. It returns what logger and procd were given and the exit code
// of start_service.
func runInitStart(t *testing.T, stderr string, code int) (logged, procd string, rc string) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "carpd")
	script := "#!/bin/sh\nprintf 'stdout is not logged\\n'\nprintf '%s' '" + strings.ReplaceAll(stderr, "'", `'\''`) + "' >&2\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "log")
	calls := filepath.Join(dir, "procd")
	stubs := `
config_load() { :; }
config_get_bool() { eval "$1=$4"; }
logger() { { echo "logger $*"; cat; } >> "$LOG"; }
procd_open_instance() { echo open >> "$CALLS"; }
procd_set_param() { echo "param $*" >> "$CALLS"; }
procd_close_instance() { echo close >> "$CALLS"; }
. ../../package/carpd/files/carpd.init
PROG=$FAKE
CONFIG=/etc/config/carpd
start_service
echo "rc=$?"
`
	cmd := exec.Command(sh, "-c", stubs)
	cmd.Env = append(os.Environ(), "LOG="+log, "CALLS="+calls, "FAKE="+fake, "TMPDIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, out)
	}
	l, _ := os.ReadFile(log)
	p, _ := os.ReadFile(calls)
	return string(l), string(p), strings.TrimSpace(string(out))
}

// TestInitScriptCheckConfig: the init script logs check-config's errors and
// refuses to start, logs its warnings and starts, and writes no file on the
// way (the old one wrote a fixed /tmp/carpd.check: through a symlink there
// root truncated any file, and a FIFO hung the start).
func TestInitScriptCheckConfig(t *testing.T) {
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The old fixed name, as an attacker would plant it; only if nobody
	// else has it.
	const fixed = "/tmp/carpd.check"
	if err := os.Symlink(victim, fixed); err == nil {
		t.Cleanup(func() { os.Remove(fixed) })
	} else {
		t.Logf("cannot plant %s (%v): only the logging is checked", fixed, err)
	}

	logged, procd, rc := runInitStart(t, "carpd: /etc/config/carpd:3: option 'vhid': must be an integer 1-255\n", 1)
	if rc != "rc=1" || procd != "" {
		t.Errorf("a bad config: %s, procd %q; want rc=1 and no instance", rc, procd)
	}
	if want := "logger -t carpd -p daemon.err\ncarpd: /etc/config/carpd:3: option 'vhid': must be an integer 1-255\n"; logged != want {
		t.Errorf("a bad config logged %q, want %q", logged, want)
	}

	warning := "warning: /etc/config/carpd:17: vhid section \"lan\" uses the example password \"change-me\"\n"
	logged, procd, rc = runInitStart(t, warning, 0)
	if rc != "rc=0" || !strings.HasPrefix(procd, "open\nparam command") {
		t.Errorf("a good config with a warning: %s, procd %q; want rc=0 and an instance", rc, procd)
	}
	if want := "logger -t carpd -p daemon.warn\n" + warning; logged != want {
		t.Errorf("a good config logged %q, want %q", logged, want)
	}

	logged, _, rc = runInitStart(t, "", 0)
	if rc != "rc=0" || logged != "" {
		t.Errorf("a clean config: %s, logged %q; want rc=0 and nothing logged", rc, logged)
	}

	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious\n" {
		t.Errorf("the file behind %s now holds %q (%v)", fixed, b, err)
	}
}
