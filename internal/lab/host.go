package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A Host is a network namespace standing for one machine: a router, a
// client, a server.
type Host struct {
	Name string // name given to Lab.Host
	NS   string // namespace name, for `ip netns exec NS ...` and `ip -n NS ...`

	lab *Lab
}

// hostSysctls are set in every new host before it has any interface, so the
// "default" entries apply to all of them.
var hostSysctls = [][2]string{
	{"net.ipv4.ip_forward", "1"},
	// IPv6 addresses survive a carrier loss, as on a router.
	{"net.ipv6.conf.all.keep_addr_on_down", "1"},
	{"net.ipv6.conf.default.keep_addr_on_down", "1"},
	// Addresses are usable at once: no DAD delay, no tentative VIPs.
	{"net.ipv6.conf.all.accept_dad", "0"},
	{"net.ipv6.conf.default.accept_dad", "0"},
}

// Host creates a namespace for a machine called name (1-16 of
// [A-Za-z0-9_-], unique within the lab), with `lo` up and these sysctls:
//
//	net.ipv4.ip_forward=1
//	net.ipv6.conf.{all,default}.keep_addr_on_down=1
//	net.ipv6.conf.{all,default}.accept_dad=0
//
// Everything else (arp_accept, arp_ignore, rp_filter, ...) keeps the
// kernel's default.
func (l *Lab) Host(name string) (*Host, error) {
	if err := l.begin(); err != nil {
		return nil, err
	}
	defer l.ops.Done()
	ns, err := l.newNS(name)
	if err != nil {
		return nil, err
	}
	h := &Host{Name: name, NS: ns, lab: l}
	if err := h.sysctls(hostSysctls); err != nil {
		return nil, err
	}
	if _, err := ipIn(context.Background(), ns, "link", "set", "dev", "lo", "up"); err != nil {
		return nil, err
	}
	return h, nil
}

// String returns the host's name.
func (h *Host) String() string { return h.Name }

// path is the namespace's bind mount.
func (h *Host) path() string { return filepath.Join(nsDir, h.NS) }

// Do runs fn on an OS thread that has joined the host's network namespace,
// then returns the thread to its original namespace. Sockets created inside
// fn stay in the host's namespace for their whole life and may be used from
// any goroutine afterwards; that is how the prober works.
//
// Only the network namespace changes: the mount namespace is the caller's,
// so /sys/class/net inside fn still shows the caller's interfaces (use the
// `ip` based helpers or netlink). /proc/sys/net does follow the thread.
// Goroutines started by fn run on other threads, in the caller's namespace,
// so fn must not start goroutines that expect to be in the host's.
//
// If the thread cannot be switched back, it is never unlocked, so the Go
// runtime destroys it instead of reusing it. A panic in fn propagates.
func (h *Host) Do(fn func() error) error {
	return inNS(h.path(), fn)
}

// Run runs args in the host's namespace (`ip netns exec NS args...`) and
// returns its stdout. Without a deadline in ctx it is bounded by 10 s; when
// ctx ends, the command and its process group are killed. The error carries
// the combined output.
func (h *Host) Run(ctx context.Context, args ...string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("lab: %s: Run without a command", h)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmdTimeout)
		defer cancel()
	}
	var stdout lockedBuffer
	var combined lockedBuffer
	p, err := h.start(startConfig{
		stdout: teeWriter{&stdout, &combined},
		stderr: &combined,
	}, args)
	if err != nil {
		return "", err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.Kill()
		<-p.done // bounded: SIGKILL, then cmd.WaitDelay
	}
	p.untrack()
	err = p.err
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), p.err)
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("lab: %s: %s: %w: %s", h, strings.Join(args, " "), err, strings.TrimSpace(combined.String()))
	}
	return stdout.String(), nil
}

// Sysctl sets a sysctl in the host's namespace. key is either dotted
// ("net.ipv4.ip_forward") or a path below /proc/sys
// ("net/ipv4/conf/eth0.10/arp_announce"), the form to use when an
// interface name contains a dot.
func (h *Host) Sysctl(key, value string) error {
	return h.sysctls([][2]string{{key, value}})
}

func (h *Host) sysctls(kvs [][2]string) error {
	for _, kv := range kvs {
		if !strings.HasPrefix(sysctlPath(kv[0]), "/proc/sys/net/") {
			return fmt.Errorf("lab: sysctl %q: only net.* sysctls are per namespace", kv[0])
		}
	}
	return h.Do(func() error {
		for _, kv := range kvs {
			if err := os.WriteFile(sysctlPath(kv[0]), []byte(kv[1]), 0); err != nil {
				return fmt.Errorf("lab: %s: sysctl %s=%s: %w", h, kv[0], kv[1], err)
			}
		}
		return nil
	})
}

// sysctlPath maps a sysctl key to its file.
func sysctlPath(key string) string {
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	return filepath.Join("/proc/sys", filepath.Clean("/"+key))
}

// Addrs returns the addresses on ifname in CIDR form ("10.0.0.1/24",
// "fd00::1/64", "fe80::.../64"), IPv4 first, in the kernel's order.
func (h *Host) Addrs(ifname string) ([]string, error) {
	out, err := ipIn(context.Background(), h.NS, "-j", "addr", "show", "dev", ifname)
	if err != nil {
		return nil, err
	}
	var links []struct {
		AddrInfo []struct {
			Family    string `json:"family"`
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(jsonList(out), &links); err != nil {
		return nil, fmt.Errorf("lab: %s: parse ip -j addr: %w", h, err)
	}
	var v4, v6 []string
	for _, l := range links {
		for _, a := range l.AddrInfo {
			s := fmt.Sprintf("%s/%d", a.Local, a.PrefixLen)
			switch a.Family {
			case "inet":
				v4 = append(v4, s)
			case "inet6":
				v6 = append(v6, s)
			}
		}
	}
	return append(v4, v6...), nil
}

// Neigh returns the neighbour entry for ip on ifname: its link-layer
// address (empty while unresolved) and its state ("REACHABLE", "STALE",
// "FAILED", ...; several flags are joined with ","). It returns
// ErrNoNeighbor if there is no entry.
func (h *Host) Neigh(ifname, ip string) (mac, state string, err error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return "", "", fmt.Errorf("lab: %s: neigh: %w", h, err)
	}
	out, err := ipIn(context.Background(), h.NS, "-j", "neigh", "show", "dev", ifname, "to", addr.String())
	if err != nil {
		return "", "", err
	}
	var entries []struct {
		Dst    string   `json:"dst"`
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal(jsonList(out), &entries); err != nil {
		return "", "", fmt.Errorf("lab: %s: parse ip -j neigh: %w", h, err)
	}
	for _, e := range entries {
		if d, err := netip.ParseAddr(e.Dst); err == nil && d == addr {
			return e.LLAddr, strings.Join(e.State, ","), nil
		}
	}
	return "", "", fmt.Errorf("%w for %s on %s in %s", ErrNoNeighbor, ip, ifname, h)
}

// LinkState is an interface's state as `ip link` shows it.
type LinkState struct {
	AdminUp   bool   // IFF_UP: set up by the administrator
	Carrier   bool   // IFF_LOWER_UP: up and the carrier is present
	OperState string // RFC 2863 operational state: "UP", "DOWN", "LOWERLAYERDOWN", ...
	MAC       string // link-layer address
}

// LinkState returns the state of ifname.
func (h *Host) LinkState(ifname string) (LinkState, error) {
	out, err := ipIn(context.Background(), h.NS, "-j", "link", "show", "dev", ifname)
	if err != nil {
		return LinkState{}, err
	}
	var links []struct {
		Flags     []string `json:"flags"`
		OperState string   `json:"operstate"`
		Address   string   `json:"address"`
	}
	if err := json.Unmarshal(jsonList(out), &links); err != nil {
		return LinkState{}, fmt.Errorf("lab: %s: parse ip -j link: %w", h, err)
	}
	if len(links) != 1 {
		return LinkState{}, fmt.Errorf("lab: %s: ip -j link show dev %s: %d links", h, ifname, len(links))
	}
	k := links[0]
	return LinkState{
		AdminUp:   slices.Contains(k.Flags, "UP"),
		Carrier:   slices.Contains(k.Flags, "LOWER_UP"),
		OperState: k.OperState,
		MAC:       k.Address,
	}, nil
}

// jsonList returns the output of an `ip -j` command, with no output read as
// an empty list.
func jsonList(out string) []byte {
	if strings.TrimSpace(out) == "" {
		return []byte("[]")
	}
	return []byte(out)
}
