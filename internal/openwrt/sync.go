package openwrt

import (
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/config"
)

// sync maps the `config sync` section onto config.Sync. A section that is
// present is enabled unless `option enabled '0'`.
func (m *mapper) sync(s *Section) {
	if m.syncSec != nil {
		m.errorf(s, nil, s.Line, "only one sync section is allowed; the first is at line %d", m.syncSec.Line)
		return
	}
	m.syncSec = s
	c := &m.cfg.Sync
	c.Enabled = true
	m.configSyncCleared(s)
	for _, o := range s.Options {
		switch o.Name {
		case "enabled":
			m.boolean(s, o, &c.Enabled)
		case "interface":
			m.str(s, o, &c.Interface)
		case "peer":
			m.addr(s, o, &c.Peer)
		case "group":
			m.addr(s, o, &c.Group)
		case "port":
			m.uint(s, o, 1, 65535, func(n uint64) { c.Port = uint16(n) })
		case "key":
			m.str(s, o, &c.Key)
		case "bandwidth":
			if v, ok := m.scalar(s, o); ok {
				bps, err := parseBandwidth(v)
				if err != nil {
					m.errorf(s, o, o.Line, "%v", err)
				} else {
					c.Bandwidth = bps
				}
			}
		case "window":
			m.duration(s, o, &c.Window)
		case "refresh":
			m.duration(s, o, &c.Refresh)
		case "bulk_timeout":
			m.duration(s, o, &c.BulkTimeout)
		case "demotion":
			m.integer(s, o, 0, 255, &c.Demotion)
		case "lease_sync":
			m.boolean(s, o, &c.LeaseSync)
		case "leasefile":
			m.str(s, o, &c.LeaseFile)
			if !leaseFileOK(c.LeaseFile) {
				m.errorf(s, o, o.Line, "must be a plain absolute path under /tmp/, /var/ or /run/ (carpd rewrites it as root), not %q", c.LeaseFile)
			}
		case "protocol":
			for i, v := range o.Values {
				p, ok := protocols[strings.ToLower(v)]
				if !ok {
					m.errorf(s, o, o.ValueLines[i], "must be tcp, udp, icmp, icmpv6 or sctp, not %q", v)
					continue
				}
				c.Filter.Protocols = append(c.Filter.Protocols, p)
			}
		case "include":
			c.Filter.Include = m.prefixes(s, o)
		case "exclude":
			c.Filter.Exclude = m.prefixes(s, o)
		case "zone":
			for i, v := range o.Values {
				n, err := strconv.ParseUint(v, 10, 16)
				if err != nil || !isDigits(v) {
					m.errorf(s, o, o.ValueLines[i], "must be a zone number 0-65535, not %q", v)
					continue
				}
				c.Filter.Zones = append(c.Filter.Zones, uint16(n))
			}
		case "mark":
			if v, ok := m.scalar(s, o); ok {
				mark, mask, err := parseMark(v)
				if err != nil {
					m.errorf(s, o, o.Line, "%v", err)
				} else {
					c.Filter.Mark, c.Filter.MarkMask = mark, mask
				}
			}
		case "min_state":
			if v, ok := m.scalar(s, o); ok {
				switch strings.ToLower(v) {
				case "any", "new":
					c.Filter.MinTCPState, c.Filter.AssuredOnly = 0, false
				case "established":
					c.Filter.MinTCPState = 3
				case "assured":
					c.Filter.MinTCPState, c.Filter.AssuredOnly = 3, true
				default:
					m.errorf(s, o, o.Line, "must be any, established or assured, not %q", v)
				}
			}
		// Configuration sync (docs/config-sync.md).
		case "config_role":
			if v, ok := m.scalar(s, o); ok {
				switch v {
				case "none", "":
					m.cfg.ConfigSync.Role = ""
				case config.RolePrimary, config.RoleSecondary:
					m.cfg.ConfigSync.Role = v
				default:
					m.errorf(s, o, o.Line, "must be primary, secondary or none, not %q", v)
				}
			}
		case "config":
			for _, v := range o.Values {
				if v == "carpd" {
					// Each router's own: advskew, the peer, the key.
					m.warnf(o.Line, "package carpd is never synced (its options are each router's own); skipped")
					continue
				}
				m.cfg.ConfigSync.Packages = append(m.cfg.ConfigSync.Packages, v)
			}
		case "file":
			m.cfg.ConfigSync.Files = append(m.cfg.ConfigSync.Files, o.Values...)
		case "config_dir":
			m.str(s, o, &m.cfg.ConfigSync.Dir)
		case "reload_command":
			m.str(s, o, &m.cfg.ConfigSync.ReloadCommand)
			if m.cfg.ConfigSync.ReloadCommand == "" {
				m.cfg.ConfigSync.ReloadCommand = config.NoReload // 'none' survives uci commit, unlike ''
			}
		default:
			m.unknown(o)
		}
	}
}

var protocols = map[string]uint8{"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132}

func (m *mapper) addr(s *Section, o *Option, dst *netip.Addr) {
	v, ok := m.scalar(s, o)
	if !ok {
		return
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		m.errorf(s, o, o.Line, "must be an IP address, not %q", v)
		return
	}
	*dst = a
}

func (m *mapper) uint(s *Section, o *Option, lo, hi uint64, set func(uint64)) {
	v, ok := m.scalar(s, o)
	if !ok {
		return
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n < lo || n > hi || !isDigits(v) {
		m.errorf(s, o, o.Line, "must be an integer %d-%d, not %q", lo, hi, v)
		return
	}
	set(n)
}

// duration accepts Go durations ("200ms", "1m30s") or whole seconds ("60").
func (m *mapper) duration(s *Section, o *Option, dst *time.Duration) {
	v, ok := m.scalar(s, o)
	if !ok {
		return
	}
	if isDigits(v) {
		n, err := strconv.ParseUint(v, 10, 32)
		if err == nil {
			*dst = time.Duration(n) * time.Second
			return
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		m.errorf(s, o, o.Line, "must be a duration such as 200ms, 30s or 5m (a bare number is seconds), not %q", v)
		return
	}
	*dst = d
}

func (m *mapper) prefixes(s *Section, o *Option) []netip.Prefix {
	var out []netip.Prefix
	for i, v := range o.Values {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				m.errorf(s, o, o.ValueLines[i], "must be an address or prefix such as 10.0.0.0/8, not %q", v)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

// parseBandwidth reads a rate as tc(8) does: a bare number or "bit" is bits
// per second; kbit, mbit, gbit scale by 1000; bps, kbps, mbps are bytes per
// second. It returns bytes per second.
func parseBandwidth(v string) (uint64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("must be a rate such as 256kbit, 1mbit or 100kbps, not %q", v)
	}
	mult := map[string]float64{"": 1.0 / 8, "bit": 1.0 / 8, "kbit": 1000.0 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
		"bps": 1, "kbps": 1000, "mbps": 1e6}[s[i:]]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q in %q: use bit, kbit, mbit, gbit, bps, kbps or mbps", s[i:], v)
	}
	return uint64(n * mult), nil
}

// parseMark reads "0x10" or "0x10/0xff" (decimal works too).
func parseMark(v string) (mark, mask uint32, err error) {
	ms, ks, hasMask := strings.Cut(v, "/")
	a, err1 := strconv.ParseUint(ms, 0, 32)
	b := uint64(0xffffffff)
	var err2 error
	if hasMask {
		b, err2 = strconv.ParseUint(ks, 0, 32)
	}
	if err1 != nil || err2 != nil || b == 0 {
		return 0, 0, fmt.Errorf("must be a mark such as 0x10 or 0x10/0xff, not %q", v)
	}
	return uint32(a), uint32(b), nil
}

// leaseFileOK: the lease file carpd rewrites (as root) with what the peer
// sends is a plain path where dnsmasq keeps its leases (/tmp/dhcp.leases
// on OpenWrt, /var/lib/misc/dnsmasq.leases on Debian), never /etc/shadow.
func leaseFileOK(p string) bool {
	if path.Clean(p) != p || strings.HasSuffix(p, "/") {
		return false
	}
	for _, dir := range []string{"/tmp/", "/var/", "/run/"} {
		if strings.HasPrefix(p, dir) {
			return true
		}
	}
	return false
}
