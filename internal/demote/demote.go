package demote

import (
	"slices"
	"sort"
	"time"
)

// Max is the largest demotion: the demote byte of an advertisement.
// Sums saturate there, they never wrap.
const Max = 255

// Source is one named contribution to a demotion counter.
type Source struct {
	// Group is the demotion group the source counts in; "" for a
	// source of one vhid only (its own manual demotion, its send
	// errors).
	Group string `json:"group"`
	Name  string `json:"name"`
	// Value is what the source adds, ≥ 1 (a source at 0 is removed).
	Value  int    `json:"value"`
	Reason string `json:"reason"`
	// Since is when Value took its current value.
	Since time.Time `json:"since"`
	// Expires, when set, is when the source removes itself.
	Expires time.Time `json:"expires,omitzero"`
}

// Table holds the sources of every group (or, with group "", of one
// vhid). The zero Table is empty and ready; it is not safe for concurrent
// use.
type Table struct {
	groups map[string]map[string]*Source
}

// Set gives source name of group the value, with the reason shown in
// status. Value ≤ 0 removes the source; values above Max are Max. A ttl
// > 0 makes the source expire at now+ttl (each Set renews it); ttl 0 is
// no expiry. Since moves to now only when the value changes.
//
// Set returns whether the group's counter went from 0 to non-zero, the
// moment OpenBSD makes every member vhid advertise at once.
func (t *Table) Set(group, name string, value int, reason string, now time.Time, ttl time.Duration) (rose bool) {
	before := t.Counter(group)
	if value <= 0 {
		t.remove(group, name)
		return false
	}
	value = min(value, Max)
	if t.groups == nil {
		t.groups = map[string]map[string]*Source{}
	}
	g := t.groups[group]
	if g == nil {
		g = map[string]*Source{}
		t.groups[group] = g
	}
	s := g[name]
	if s == nil {
		s = &Source{Group: group, Name: name}
		g[name] = s
	}
	if s.Value != value || s.Since.IsZero() {
		s.Since = now
	}
	s.Value, s.Reason = value, reason
	s.Expires = time.Time{}
	if ttl > 0 {
		s.Expires = now.Add(ttl)
	}
	return before == 0 && t.Counter(group) > 0
}

func (t *Table) remove(group, name string) {
	g := t.groups[group]
	delete(g, name)
	if len(g) == 0 {
		delete(t.groups, group)
	}
}

// Get returns a source, and whether it is there.
func (t *Table) Get(group, name string) (Source, bool) {
	s, ok := t.groups[group][name]
	if !ok {
		return Source{}, false
	}
	return *s, true
}

// Counter is a group's counter: the sum of its sources, capped at Max.
func (t *Table) Counter(group string) int {
	n := 0
	for _, s := range t.groups[group] {
		n = Add(n, s.Value)
	}
	return n
}

// Sum is the demotion of a member of groups: the sum of their counters,
// capped at Max. A group listed twice counts once.
func (t *Table) Sum(groups []string) int {
	n := 0
	for i, g := range groups {
		if !slices.Contains(groups[:i], g) {
			n = Add(n, t.Counter(g))
		}
	}
	return n
}

// Groups returns the names of the groups that have a source, sorted.
func (t *Table) Groups() []string {
	out := make([]string, 0, len(t.groups))
	for g := range t.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Sources returns the sources of the groups given, sorted by group (in
// the order given) then name; all groups, sorted, when groups is nil.
func (t *Table) Sources(groups []string) []Source {
	if groups == nil {
		groups = t.Groups()
	}
	var out []Source
	for i, g := range groups {
		if slices.Contains(groups[:i], g) {
			continue
		}
		start := len(out)
		for _, s := range t.groups[g] {
			out = append(out, *s)
		}
		part := out[start:]
		sort.Slice(part, func(a, b int) bool { return part[a].Name < part[b].Name })
	}
	return out
}

// Expire removes the sources whose expiry is at or before now; it
// returns the groups whose counter changed, sorted.
func (t *Table) Expire(now time.Time) []string {
	var changed []string
	for g, srcs := range t.groups {
		for name, s := range srcs {
			if !s.Expires.IsZero() && !s.Expires.After(now) {
				t.remove(g, name)
				if !slices.Contains(changed, g) {
					changed = append(changed, g)
				}
			}
		}
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i] < changed[j] })
	return changed
}

// NextExpiry is the earliest expiry of any source; zero when none
// expires.
func (t *Table) NextExpiry() time.Time {
	var next time.Time
	for _, srcs := range t.groups {
		for _, s := range srcs {
			if !s.Expires.IsZero() && (next.IsZero() || s.Expires.Before(next)) {
				next = s.Expires
			}
		}
	}
	return next
}

// Add returns cur+delta clamped to [0, Max], for cur in that range and
// any delta, without overflow.
func Add(cur, delta int) int {
	switch {
	case delta >= Max-cur:
		return Max
	case delta <= -cur:
		return 0
	}
	return cur + delta
}

// MaxNameLen bounds group and source names given from outside.
const MaxNameLen = 32

// ValidName reports whether s may name a group or a source set from
// outside (control socket, ubus): 1 to MaxNameLen of A-Z a-z 0-9 _ : . -.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == ':' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Names of the sources carpd sets itself.
const (
	SourceManual      = "manual"      // carpd demote N (relative)
	SourceMaintenance = "maintenance" // maintenance mode
	SourceSync        = "sync"        // initial bulk transfer not complete
	SourceSyncLink    = "sync_link"   // the sync link is down
	SourceSyncBulk    = "sync_bulk"   // the last initial transfer failed
	SourceSendErrors  = "send_errors" // a vhid cannot send its adverts
	SourceLinkPrefix  = "link:"       // link:<device>, a carpdev is down
)

// Builtin reports whether name is a source carpd sets itself, which no
// outside program may set (the relative manual demotion is set with
// `carpd demote N`, and may be set absolutely too).
func Builtin(name string) bool {
	switch name {
	case SourceMaintenance, SourceSync, SourceSyncLink, SourceSyncBulk, SourceSendErrors:
		return true
	}
	return len(name) >= len(SourceLinkPrefix) && name[:len(SourceLinkPrefix)] == SourceLinkPrefix ||
		len(name) >= 4 && name[:4] == "sync"
}
