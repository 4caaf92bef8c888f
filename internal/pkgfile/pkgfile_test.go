package pkgfile

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	ok := []File{{Path: "/usr/sbin/carpd", Mode: 0o755}, {Path: "/etc/config/carpd", Mode: 0o600}}
	if err := Check(ok); err != nil {
		t.Fatalf("good list refused: %v", err)
	}
	for _, c := range []struct {
		files []File
		want  string
	}{
		{[]File{{Path: "etc/x"}}, "must be absolute and clean"},
		{[]File{{Path: "/etc//x"}}, "must be absolute and clean"},
		{[]File{{Path: "/"}}, "must be absolute and clean"},
		{[]File{{Path: "/etc/x", Mode: 0o4755}}, "only permission bits"},
		{[]File{{Path: "/etc/x"}, {Path: "/etc/x"}}, "listed twice"},
		{[]File{{Path: "/etc/x"}, {Path: "/etc/x/y"}}, "is a file and the parent directory of /etc/x/y"},
	} {
		if err := Check(c.files); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check(%v) = %v, want an error with %q", c.files, err, c.want)
		}
	}
}
