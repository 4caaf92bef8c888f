package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// opkgCompare is opkg-lede's version comparison (libopkg/pkg.c:
// pkg_compare_versions / verrevcmp): [epoch:]upstream[-revision], each part
// compared Debian-style ('~' lowest, then end of string, letters,
// everything else; digit runs numerically).
func opkgCompare(a, b string) int {
	split := func(v string) (epoch, up, rev string) {
		if e, rest, ok := strings.Cut(v, ":"); ok {
			epoch, v = e, rest
		}
		if i := strings.LastIndex(v, "-"); i >= 0 {
			return epoch, v[:i], v[i+1:]
		}
		return epoch, v, ""
	}
	ea, ua, ra := split(a)
	eb, ub, rb := split(b)
	if c := verrevcmp(ea, eb); c != 0 { // numeric strings: same as opkg's strtoul compare here
		return c
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return c
	}
	return verrevcmp(ra, rb)
}

func order(c byte, end bool) int {
	switch {
	case end:
		return 0
	case c == '~':
		return -1
	case c >= '0' && c <= '9':
		return 0
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return int(c)
	default:
		return int(c) + 256
	}
}

func isDigit(s string, i int) bool { return i < len(s) && s[i] >= '0' && s[i] <= '9' }

func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a, i)) || (j < len(b) && !isDigit(b, j)) {
			var ca, cb byte
			if i < len(a) {
				ca = a[i]
			}
			if j < len(b) {
				cb = b[j]
			}
			if oa, ob := order(ca, i >= len(a)), order(cb, j >= len(b)); oa != ob {
				return oa - ob
			}
			i, j = i+1, j+1
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		firstDiff := 0
		for isDigit(a, i) && isDigit(b, j) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i, j = i+1, j+1
		}
		if isDigit(a, i) {
			return 1
		}
		if isDigit(b, j) {
			return -1
		}
		if firstDiff != 0 {
			return firstDiff
		}
	}
	return 0
}

var apkVersionRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(~[0-9a-f]+)?(-r[0-9]+)?$`)

// TestVersionScheme runs package/version.sh on a scratch repository
// through untagged commits, a tag and commits after it, and checks every
// version is valid for apk and sorts above the one before for opkg.
func TestVersionScheme(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	script, _ := filepath.Abs("../../package/version.sh")
	repo := t.TempDir()
	for _, v := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CEILING_DIRECTORIES"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+repo)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	version := func() string {
		t.Helper()
		cmd := exec.Command("sh", script, repo)
		cmd.Env = append(os.Environ(), "HOME="+repo, "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("version.sh: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func() string {
		git("commit", "-q", "--allow-empty", "-m", "x")
		return git("rev-parse", "--short=7", "HEAD")
	}
	git("init", "-q")
	var got []string
	h := commit()
	if v := version(); v != "0.0.0_git1~"+h {
		t.Errorf("first commit: %s", v)
	}
	got = append(got, version())
	h = commit()
	if v := version(); v != "0.0.0_git2~"+h {
		t.Errorf("second commit: %s", v)
	}
	got = append(got, version())
	git("tag", "v0.1.0")
	if v := version(); v != "0.1.0" {
		t.Errorf("at v0.1.0: %s", v)
	}
	got = append(got, version())
	for i := 1; i <= 10; i++ { // 9 -> 10 checks numeric, not string, order
		h = commit()
		if v, want := version(), "0.1.0_git"+strconv.Itoa(i)+"~"+h; v != want {
			t.Errorf("%d after v0.1.0: %s, want %s", i, v, want)
		}
		got = append(got, version())
	}
	git("tag", "-a", "-m", "release", "v0.1.1") // annotated tags too
	got = append(got, version())
	commit()
	git("tag", "v0.2.0-rc1")
	if out, err := exec.Command("sh", script, repo).CombinedOutput(); err == nil || !strings.Contains(string(out), "not vX.Y.Z") {
		t.Errorf("rc tag accepted: %s", out)
	}

	for i, v := range got {
		full := v + "-r1"
		if !apkVersionRE.MatchString(full) {
			t.Errorf("%s is not valid for apk", full)
		}
		if i > 0 {
			prev := got[i-1] + "-r1"
			if opkgCompare(prev, full) >= 0 || opkgCompare(full, prev) <= 0 {
				t.Errorf("opkg does not sort %s below %s", prev, full)
			}
		}
	}
	if got[len(got)-1] != "0.1.1" {
		t.Errorf("last: %s", got[len(got)-1])
	}
}

// TestOpkgCompare pins the comparison against cases from dpkg's and
// opkg's semantics.
func TestOpkgCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int // sign
	}{
		{"1.0", "1.0", 0},
		{"1.0~rc1", "1.0", -1},
		{"1.0", "1.0_git1~abc", -1},
		{"1.0", "1.0+1", -1},
		{"1.0-r1", "1.0-r2", -1},
		{"1.9", "1.10", -1},
		{"1:0.1", "2.0", 1},
		{"0.0.0_git33~2a841be-r1", "0.1.0-r1", -1},
		{"1.0a", "1.0", 1},
	} {
		got := opkgCompare(c.a, c.b)
		if (got > 0) != (c.want > 0) || (got < 0) != (c.want < 0) {
			t.Errorf("compare(%s, %s) = %d, want sign %d", c.a, c.b, got, c.want)
		}
	}
}
