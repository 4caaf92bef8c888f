package track

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// processProber looks for a running process by name each round: a process
// matches when its comm (/proc/PID/comm, the kernel's 15-byte name) or the
// base name of its argv[0] is the name.
type processProber struct{ t *Tracker }

func (p *processProber) round(ctx context.Context) result {
	name := p.t.cfg.Process
	n, err := countProcesses(p.t.env.ProcRoot, name)
	switch {
	case err != nil:
		return result{value: p.t.cfg.Weight, reason: err.Error(), err: err.Error()}
	case n == 0:
		return result{value: p.t.cfg.Weight, reason: fmt.Sprintf("no process %s", name)}
	}
	return result{reason: fmt.Sprintf("%d process(es) %s running", n, name)}
}

func (p *processProber) wake() <-chan struct{} { return nil }
func (p *processProber) close()                {}

// countProcesses counts the processes under root (a proc file system)
// named name.
func countProcesses(root, name string) (int, error) {
	d, err := os.Open(root)
	if err != nil {
		return 0, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return 0, err
	}
	comm := name
	if len(comm) > 15 {
		comm = comm[:15] // the kernel truncates comm to TASK_COMM_LEN-1
	}
	n := 0
	for _, pid := range names {
		if pid == "" || pid[0] < '1' || pid[0] > '9' {
			continue
		}
		dir := filepath.Join(root, pid)
		if b, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
			if string(bytes.TrimRight(b, "\n")) == comm && (len(name) <= 15 || argv0Is(dir, name)) {
				n++
				continue
			}
		}
		if argv0Is(dir, name) {
			n++
		}
	}
	return n, nil
}

// argv0Is reports whether the base name of the process's argv[0] is name.
// Kernel threads and zombies have an empty cmdline.
func argv0Is(dir, name string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil || len(b) == 0 {
		return false
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return filepath.Base(string(b)) == name
}
