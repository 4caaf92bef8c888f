package daemon

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/demote"
)

// Demotion, the groups model (docs/carp-protocol.md#demotion). Everything
// in this file runs on the loop.
//
// The daemon keeps one demote.Table, d.sources, of group sources: the
// ones it derives from its own state (link:<dev>, maintenance, sync,
// sync_link, sync_bulk; refreshSources recomputes them), the relative
// manual demotion (carpd demote [-g GROUP] N), the sources set from
// outside (carpd demote --source NAME --set N) and the trackers'. Each
// vhost entry keeps its own sources (group ""): its manual demotion; the
// vhost itself adds send_errors. A vhid's demotion is the sum over its
// groups (carp and its list group) and its own sources, capped at 255.

// MaxDemotion is the largest value of a demotion counter: the demote byte
// of the advertisement.
const MaxDemotion = demote.Max

// Limits of a source set from outside.
const (
	maxSourceTTL = 86400 // seconds
)

// addDemotion returns cur+delta clamped to [0, MaxDemotion], for cur in
// that range and any delta, without overflow.
func addDemotion(cur, delta int) int { return demote.Add(cur, delta) }

// groupsOf returns the demotion groups of a vhid: carp, then those of its
// list group (each once).
func groupsOf(v config.VHID) []string {
	out := []string{config.DefaultGroup}
	for _, g := range v.Groups {
		if g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// now is the daemon's clock (the vhosts' clock).
func (d *Daemon) now() time.Time {
	if d.env.Clock != nil {
		return d.env.Clock.Now()
	}
	return time.Now()
}

// refreshSources brings the sources the daemon derives from its own
// state up to date. The table keeps a source's since while its value
// stays.
func (d *Daemon) refreshSources() {
	now, carpG := d.now(), config.DefaultGroup
	down := map[string]bool{}
	for _, ie := range d.ifaces {
		if !ie.linkUp {
			down[demote.SourceLinkPrefix+ie.name] = true
		}
	}
	for _, s := range d.sources.Sources([]string{carpG}) {
		if strings.HasPrefix(s.Name, demote.SourceLinkPrefix) && !down[s.Name] {
			d.sources.Set(carpG, s.Name, 0, "", now, 0)
		}
	}
	for name := range down {
		d.sources.Set(carpG, name, 1, "link of "+strings.TrimPrefix(name, demote.SourceLinkPrefix)+" is down", now, 0)
	}
	maint := 0
	if d.maint {
		maint = MaintenanceDemotion
	}
	d.sources.Set(carpG, demote.SourceMaintenance, maint, "maintenance mode is on", now, 0)
	d.sources.Set(carpG, demote.SourceSync, d.syncDemotion(), "waiting for the sync peer's table (initial bulk transfer)", now, 0)
	d.sources.Set(carpG, demote.SourceSyncLink, boolInt(d.syncLinkDown()),
		"sync link "+d.cfg.Sync.Interface+" is down", now, 0)
	d.sources.Set(carpG, demote.SourceSyncBulk, boolInt(d.syncBulkFailed()),
		"the last initial bulk transfer failed: no complete table from the sync peer within bulk_timeout", now, 0)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// demotion is the sum of every demotion source for ve, in [0, 255]: its
// groups' counters and its own sources (the vhost adds send_errors).
func (d *Daemon) demotion(ve *vhostEntry) uint8 {
	return uint8(demote.Add(d.sources.Sum(groupsOf(ve.cfg)), ve.own.Counter("")))
}

// updateDemotion brings the derived sources up to date and gives every
// running vhost its demotion, when it changed (a vhost advertises at once
// on a change of its demotion: a group going from 0 to non-zero makes all
// its members advertise). Not while the daemon stops: a vhost that bows
// out takes no commands, and the loop would wait for it.
func (d *Daemon) updateDemotion() {
	if d.closing {
		return
	}
	d.refreshSources()
	for _, ve := range d.vhosts {
		if ve.v == nil {
			continue
		}
		if n := int(d.demotion(ve)); n != ve.demote {
			ve.demote = n
			ve.v.SetDemote(uint8(n))
		}
	}
	d.armExpiry()
}

// setSource sets one source of group: value 0 removes it, ttl > 0 makes it
// expire by itself (on the daemon's clock). The loop API of trackers and
// of outside programs (demote --source).
func (d *Daemon) setSource(group, name string, value int, reason string, ttl time.Duration) {
	old, _ := d.sources.Get(group, name)
	rose := d.sources.Set(group, name, value, reason, d.now(), ttl)
	if nv, _ := d.sources.Get(group, name); nv.Value != old.Value {
		d.log.Info("demotion source", "group", group, "source", name, "value", nv.Value, "was", old.Value, "reason", reason, "ttl", ttl)
	}
	if rose {
		d.log.Warn("demotion group raised from 0: its vhids advertise their new demotion at once", "group", group,
			"demotion", d.sources.Counter(group))
	}
	d.updateDemotion()
}

// armExpiry sets the expiry timer to the next source's expiry.
func (d *Daemon) armExpiry() {
	if d.expiry == nil {
		return
	}
	d.expiry.Stop()
	if next := d.sources.NextExpiry(); !next.IsZero() {
		d.expiry.Reset(max(next.Sub(d.now()), 0))
	}
}

// expire removes the sources whose time is up.
func (d *Daemon) expire() {
	if changed := d.sources.Expire(d.now()); len(changed) > 0 {
		d.log.Info("demotion sources expired", "groups", strings.Join(changed, " "))
	}
	d.updateDemotion()
}

// demote changes a manual demotion by delta (negative undoes): the one of
// group when vhid is 0 and iface empty (group "" is carp), else the own
// manual demotion of the vhosts that match both (vhid 0 matches every
// vhid, an empty iface every interface; the interface is the configured
// name or the device it resolved to). Like OpenBSD's carpdemote the
// counter never goes below zero, and it never goes above MaxDemotion: the
// sum saturates, it never wraps.
func (d *Daemon) demote(vhid uint8, iface, group string, delta int) error {
	now := d.now()
	switch {
	case group != "" && (vhid != 0 || iface != ""):
		return fmt.Errorf("%w: a group demotion applies to every vhid of the group: give either a group or a vhid/interface", ErrInvalidArgument)
	case group != "":
		if err := d.checkGroup(group); err != nil {
			return err
		}
	}
	switch {
	case vhid == 0 && iface == "":
		if group == "" {
			group = config.DefaultGroup
		}
		cur, _ := d.sources.Get(group, demote.SourceManual)
		n := addDemotion(cur.Value, delta)
		d.sources.Set(group, demote.SourceManual, n, "carpd demote", now, 0)
		d.log.Info("manual demotion", "group", group, "demotion", n)
	default:
		found := false
		for _, ve := range d.vhosts {
			if (vhid == 0 || ve.cfg.VHID == vhid) && (iface == "" || iface == ve.cfg.Interface || iface == ve.dev) {
				cur, _ := ve.own.Get("", demote.SourceManual)
				n := addDemotion(cur.Value, delta)
				ve.own.Set("", demote.SourceManual, n, "carpd demote --vhid", now, 0)
				found = true
				d.log.Info("manual demotion", "vhid", ve.cfg.VHID, "iface", ve.cfg.Interface, "demotion", n)
			}
		}
		if !found {
			return fmt.Errorf("%w: %s", ErrNotFound, describeTarget(vhid, iface))
		}
	}
	d.updateDemotion()
	return nil
}

// setExternal sets a named source from outside (control socket, ubus)
// absolutely, after checking it is one outside programs may set.
func (d *Daemon) setExternal(group, name string, value, ttl int) error {
	if group == "" {
		group = config.DefaultGroup
	}
	if err := d.checkGroup(group); err != nil {
		return err
	}
	switch {
	case !demote.ValidName(name):
		return fmt.Errorf("%w: source %q: want 1 to %d of A-Z a-z 0-9 _ : . -", ErrInvalidArgument, name, demote.MaxNameLen)
	case demote.Builtin(name):
		return fmt.Errorf("%w: source %q is carpd's own (link:*, maintenance, sync*, send_errors) and cannot be set from outside", ErrInvalidArgument, name)
	case value < 0 || value > MaxDemotion:
		return fmt.Errorf("%w: set %d: want 0 to %d", ErrInvalidArgument, value, MaxDemotion)
	case ttl < 0 || ttl > maxSourceTTL:
		return fmt.Errorf("%w: ttl %d: want 0 to %d seconds (0: no expiry)", ErrInvalidArgument, ttl, maxSourceTTL)
	}
	for _, tr := range d.cfg.Tracks {
		if tr.Name == name && trackGroup(tr) == group {
			return fmt.Errorf("%w: source %q of group %s belongs to the tracker %s and cannot be set from outside", ErrInvalidArgument, name, group, tr.Name)
		}
	}
	reason := "set with demote --set"
	if ttl > 0 {
		reason += " --ttl " + strconv.Itoa(ttl)
	}
	d.setSource(group, name, value, reason, time.Duration(ttl)*time.Second)
	return nil
}

// checkGroup refuses a group name the configuration could not hold and
// a group no vhid and no tracker is in: a demotion there would move
// nothing, so it is most likely a typo the admin should hear about.
func (d *Daemon) checkGroup(group string) error {
	if !config.ValidGroup(group) {
		return fmt.Errorf("%w: group %q: want 1 to %d of A-Z a-z 0-9 _ -", ErrInvalidArgument, group, config.MaxGroupLen)
	}
	known := []string{config.DefaultGroup}
	for _, v := range d.cfg.VHIDs {
		for _, g := range v.Groups {
			if g != "" && !slices.Contains(known, g) {
				known = append(known, g)
			}
		}
	}
	for _, tr := range d.cfg.Tracks {
		if g := trackGroup(tr); !slices.Contains(known, g) {
			known = append(known, g)
		}
	}
	if !slices.Contains(known, group) {
		return fmt.Errorf("%w: group %q: no vhid or tracker is in it (groups: %s)", ErrNotFound, group, strings.Join(known, " "))
	}
	return nil
}

func trackGroup(tr config.Track) string {
	if tr.Group == "" {
		return config.DefaultGroup
	}
	return tr.Group
}

// GroupStatus is one demotion group in status.
type GroupStatus struct {
	Name     string          `json:"name"`
	Demotion int             `json:"demotion"`
	Sources  []demote.Source `json:"sources"`
}

// groupStatus lists carp, then every other group a vhid is in or a
// source raises, sorted.
func (d *Daemon) groupStatus() []GroupStatus {
	var names []string
	for _, ve := range d.vhosts {
		for _, g := range groupsOf(ve.cfg) {
			if !slices.Contains(names, g) {
				names = append(names, g)
			}
		}
	}
	for _, g := range d.sources.Groups() {
		if !slices.Contains(names, g) {
			names = append(names, g)
		}
	}
	if !slices.Contains(names, config.DefaultGroup) {
		names = append(names, config.DefaultGroup)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == config.DefaultGroup) != (names[j] == config.DefaultGroup) {
			return names[i] == config.DefaultGroup
		}
		return names[i] < names[j]
	})
	out := make([]GroupStatus, 0, len(names))
	for _, g := range names {
		srcs := d.sources.Sources([]string{g})
		if srcs == nil {
			srcs = []demote.Source{}
		}
		out = append(out, GroupStatus{Name: g, Demotion: d.sources.Counter(g), Sources: srcs})
	}
	return out
}

// vhidSources lists every non-zero source that counts for ve: its groups'
// then its own (group ""), with send_errors when the vhost reports it.
func (d *Daemon) vhidSources(ve *vhostEntry, sendErrorsSince time.Time) []demote.Source {
	out := d.sources.Sources(groupsOf(ve.cfg))
	out = append(out, ve.own.Sources([]string{""})...)
	if !sendErrorsSince.IsZero() {
		out = append(out, demote.Source{Name: demote.SourceSendErrors, Value: 1, Since: sendErrorsSince,
			Reason: "advertisements cannot be sent"})
	}
	if out == nil {
		out = []demote.Source{}
	}
	return out
}

// linkDemotion is the number of interfaces whose link is down (status
// demotion.link).
func (d *Daemon) linkDemotion() int {
	n := 0
	for _, s := range d.sources.Sources([]string{config.DefaultGroup}) {
		if strings.HasPrefix(s.Name, demote.SourceLinkPrefix) {
			n += s.Value
		}
	}
	return n
}
