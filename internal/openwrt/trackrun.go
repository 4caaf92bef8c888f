package openwrt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// trackWaitDelay is how long RunProgram reads a program's output after it
// exited or was killed.
const trackWaitDelay = time.Second

// RunProgram runs argv[0] (a path; a bare name is looked up in /bin,
// /usr/bin, /sbin, /usr/sbin) with argv[1:] and a minimal environment,
// killed with its process group when ctx is done (runCombined). Trackers'
// scripts run through it.
func RunProgram(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("no program")
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return nil, err
	}
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"}
	return runCombined(ctx, path, argv[1:], env, trackWaitDelay)
}

// lookPath finds a program: a name with a slash is taken as it is, a bare
// name is searched in the fixed PATH scripts get.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in /usr/sbin:/usr/bin:/sbin:/bin", name)
}
