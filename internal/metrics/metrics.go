package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// The status document, as far as the metrics need it (docs/ubus.md#status-reply).
// Counters are float64: the format's numbers are, and JSON integers below
// 2^53 decode exactly.
type status struct {
	Version            string       `json:"version"`
	Started            time.Time    `json:"started"`
	Reloads            float64      `json:"reloads"`
	TransitionsDropped float64      `json:"transitions_dropped"`
	Demotion           demotion     `json:"demotion"`
	VHIDs              []vhid       `json:"vhids"`
	Interfaces         []iface      `json:"interfaces"`
	Trackers           []tracker    `json:"trackers"`
	SplitBrain         []splitBrain `json:"split_brain"`
	SplitBrainAlarms   *float64     `json:"split_brain_alarms"` // nil: a carpd without split-brain detection
	MaintenanceWait    *maintWait   `json:"maintenance_wait"`
	Sync               syncStatus   `json:"sync"`
}

type demotion struct {
	Maintenance bool    `json:"maintenance"`
	Groups      []group `json:"groups"`
}

type group struct {
	Name     string   `json:"name"`
	Demotion float64  `json:"demotion"`
	Sources  []source `json:"sources"`
}

// source is one named demotion source (group "" for a vhid's own).
type source struct {
	Group   string    `json:"group"`
	Name    string    `json:"name"`
	Value   float64   `json:"value"`
	Since   time.Time `json:"since"`
	Expires time.Time `json:"expires"`
}

type vhid struct {
	Interface       string             `json:"interface"`
	Network         string             `json:"network"`
	VHID            int                `json:"vhid"`
	State           string             `json:"state"`
	Since           time.Time          `json:"since"`
	AdvBase         float64            `json:"advbase"`
	AdvSkew         float64            `json:"advskew"`
	Demotion        float64            `json:"demotion"`
	PeerDemotion    *float64           `json:"peer_demotion"`
	PeerAdvSkew     *float64           `json:"peer_advskew"`
	Groups          []string           `json:"groups"`
	DemotionSources []source           `json:"demotion_sources"`
	Counters        map[string]float64 `json:"counters"`
	Error           string             `json:"error"`
}

type iface struct {
	Name   string             `json:"name"`
	LinkUp bool               `json:"link_up"`
	Drops  map[string]float64 `json:"drops"`
}

type tracker struct {
	Name    string             `json:"name"`
	Type    string             `json:"type"`
	Group   string             `json:"group"`
	Weight  float64            `json:"weight"`
	State   string             `json:"state"`
	Value   float64            `json:"value"`
	Since   time.Time          `json:"since"`
	Good    float64            `json:"good"`
	Bad     float64            `json:"bad"`
	Targets []target           `json:"targets"`
	Error   string             `json:"error"`
	Dropped map[string]float64 `json:"dropped"`
}

type target struct {
	Address  string  `json:"address"`
	Sent     float64 `json:"sent"`
	Received float64 `json:"received"`
	RTTms    float64 `json:"rtt_ms"`
}

type splitBrain struct {
	Interface string    `json:"interface"`
	VHID      int       `json:"vhid"`
	Since     time.Time `json:"since"`
}

type maintWait struct {
	State string `json:"state"`
}

type syncStatus struct {
	Enabled          bool               `json:"enabled"`
	Error            string             `json:"error"`
	PeerUp           bool               `json:"peer_up"`
	Established      bool               `json:"established"`
	HandshakeFailing bool               `json:"handshake_failing"`
	LastAck          time.Time          `json:"last_ack"`
	RTT              string             `json:"rtt"`
	FlowsLocal       float64            `json:"flows_local"`
	FlowsSynced      float64            `json:"flows_synced"`
	FlowsPending     float64            `json:"flows_pending"`
	FlowsPeer        float64            `json:"flows_from_peer"`
	Bulk             bulk               `json:"bulk"`
	Counters         map[string]float64 `json:"counters"`
}

type bulk struct {
	Synced   bool    `json:"synced"`
	TimedOut bool    `json:"timed_out"`
	Received float64 `json:"received"`
	Serving  bool    `json:"serving"`
	Queued   float64 `json:"queued"`
}

// States as the status spells them; each gets a sample (1 for the
// current one), as node_exporter's systemd unit states do, so a query
// never has to know which states exist.
var (
	vhidStates    = []string{"INIT", "BACKUP", "MASTER"}
	trackerStates = []string{"init", "up", "down"}
	syncStates    = []string{"error", "down", "handshaking", "refused", "established"}
)

// advertDrops are the per-vhid counters of adverts dropped, by reason
// (the key in "counters" is the reason).
var advertDrops = []string{"bad_checksum", "bad_hmac", "bad_ttl", "bad_version_or_length", "own_packet",
	"queue_overflow", "stale_sequence", "timing_mismatch", "format_downgrade"}

// ifaceDrops are the per-interface counters of packets dropped before a vhid.
var ifaceDrops = []string{"unknown_vhid", "too_short", "read_errors"}

// syncCounters are the sync counters that are families of their own:
// status key, metric name, help.
var syncCounters = []struct{ key, name, help string }{
	{"bytes_sent", "carpd_sync_sent_bytes_total", "Bytes sent to the sync peer."},
	{"bytes_received", "carpd_sync_received_bytes_total", "Bytes received from the sync peer."},
	{"frames_sent", "carpd_sync_sent_frames_total", "Frames sent to the sync peer."},
	{"frames_received", "carpd_sync_received_frames_total", "Frames received from the sync peer."},
	{"records_sent", "carpd_sync_sent_records_total", "Flow records sent to the sync peer."},
	{"records_received", "carpd_sync_received_records_total", "Flow records received from the sync peer."},
	{"flows_resent", "carpd_sync_retransmitted_flows_total", "Flows sent again because the peer did not acknowledge them in time."},
	{"flows_wanted", "carpd_sync_wanted_flows_total", "Flows asked of the peer again (anti-entropy: we lacked them)."},
	{"flows_repaired", "carpd_sync_repaired_flows_total", "Flows sent again on the peer's request."},
	{"flows_purged_stale", "carpd_sync_purged_stale_flows_total", "Peer flows deleted because the peer no longer has them."},
	{"flows_never_sent", "carpd_sync_never_sent_flows_total", "Flows that ended before they were sent (short-lived)."},
	{"kernel_overruns", "carpd_sync_kernel_overruns_total", "Conntrack event overruns (each answered by a table resync)."},
	{"timeouts_clamped", "carpd_sync_clamped_timeouts_total", "Peer flow timeouts cut to the kernel's default."},
	{"apply_errors", "carpd_sync_apply_errors_total", "Peer flows the kernel refused to take."},
	{"send_errors", "carpd_sync_send_errors_total", "Frames that could not be sent."},
}

// syncDrops and syncRefused: counters with a reason label; the status key
// is the prefix plus the reason.
var (
	syncDrops = []string{"auth", "replay", "epoch", "malformed", "wrong_source", "queue_full", "invalid_flow",
		"unknown_id", "oversize", "peer_table_full"}
	syncRefused = []string{"protocol", "address", "local", "zone", "mark", "state", "clash"}
)

// Write renders the status document js (carpd status --json) as metrics.
// It fails only when js is not a status document; then nothing is written.
func Write(w io.Writer, js []byte) error {
	var st status
	if err := json.Unmarshal(js, &st); err != nil {
		return fmt.Errorf("metrics: the status is not carpd's: %w", err)
	}
	var e exposition
	render(&e, &st)
	_, err := io.WriteString(w, e.b.String())
	return err
}

// WriteDown writes what a scrape shows when carpd does not answer:
// carpd_up 0, so that an alert can tell "down" from "no data".
func WriteDown(w io.Writer) error {
	var e exposition
	up(&e).add(0)
	_, err := io.WriteString(w, e.b.String())
	return err
}

func up(e *exposition) *family {
	return e.family("carpd_up", gauge, "1 when carpd answered the status request, 0 when it could not be reached.")
}

func render(e *exposition, st *status) {
	up(e).add(1)
	e.family("carpd_info", gauge, "Always 1; the version of the running carpd.").add(1, label{"version", st.Version})
	if !st.Started.IsZero() {
		e.family("carpd_start_time_seconds", gauge, "When carpd started, in seconds since the Unix epoch.").add(unix(st.Started))
	}
	e.family("carpd_reloads_total", counter, "Configuration reloads that succeeded.").add(st.Reloads)
	e.family("carpd_transitions_dropped_total", counter, "State transitions not passed on to status, hooks and ubus (the daemon did not keep up).").add(st.TransitionsDropped)
	e.family("carpd_maintenance", gauge, "1 while maintenance mode is on (every vhid demoted by 240).").bool(st.Demotion.Maintenance)
	if mw := st.MaintenanceWait; mw != nil {
		f := e.family("carpd_maintenance_wait", gauge, "1 for the state of the running or last `maintenance --wait` (waiting, done, failed).")
		for _, s := range []string{"waiting", "done", "failed"} {
			f.bool(mw.State == s, label{"state", s})
		}
	}
	renderDemotion(e, st)
	renderVHIDs(e, st)
	renderInterfaces(e, st)
	renderTrackers(e, st)
	renderSplitBrain(e, st)
	renderSync(e, &st.Sync)
}

func renderDemotion(e *exposition, st *status) {
	f := e.family("carpd_group_demotion", gauge, "Demotion counter of a demotion group: the sum of its sources.")
	for _, g := range st.Demotion.Groups {
		f.add(g.Demotion, label{"group", g.Name})
	}
	f = e.family("carpd_demotion_source", gauge, "Value of one named demotion source of a group.")
	for _, g := range st.Demotion.Groups {
		for _, s := range g.Sources {
			f.add(s.Value, label{"group", g.Name}, label{"source", s.Name})
		}
	}
	f = e.family("carpd_demotion_source_since_timestamp_seconds", gauge, "When a demotion source took its value, in seconds since the Unix epoch.")
	for _, g := range st.Demotion.Groups {
		for _, s := range g.Sources {
			if !s.Since.IsZero() {
				f.add(unix(s.Since), label{"group", g.Name}, label{"source", s.Name})
			}
		}
	}
	f = e.family("carpd_demotion_source_expiry_timestamp_seconds", gauge, "When a demotion source set with a TTL expires, in seconds since the Unix epoch.")
	for _, g := range st.Demotion.Groups {
		for _, s := range g.Sources {
			if !s.Expires.IsZero() {
				f.add(unix(s.Expires), label{"group", g.Name}, label{"source", s.Name})
			}
		}
	}
}

// vl are the labels that name a vhid.
func vl(v *vhid, more ...label) []label {
	return append([]label{{"interface", v.Interface}, {"vhid", strconv.Itoa(v.VHID)}}, more...)
}

func renderVHIDs(e *exposition, st *status) {
	vs := st.VHIDs
	each := func(name, typ, help string, fn func(f *family, v *vhid)) {
		f := e.family(name, typ, help)
		for i := range vs {
			fn(f, &vs[i])
		}
	}
	each("carpd_vhid_info", gauge, "Always 1; the OpenWrt network a vhid's interface was configured as.", func(f *family, v *vhid) {
		f.add(1, vl(v, label{"network", v.Network})...)
	})
	each("carpd_vhid_state", gauge, "1 for the CARP state a vhid is in (INIT, BACKUP, MASTER), 0 for the others.", func(f *family, v *vhid) {
		for _, s := range vhidStates {
			f.bool(v.State == s, vl(v, label{"state", s})...)
		}
	})
	each("carpd_vhid_state_since_timestamp_seconds", gauge, "When a vhid entered its state, in seconds since the Unix epoch.", func(f *family, v *vhid) {
		if !v.Since.IsZero() {
			f.add(unix(v.Since), vl(v)...)
		}
	})
	each("carpd_vhid_running", gauge, "1 when a vhid runs, 0 when it could not be started (see carpd status).", func(f *family, v *vhid) {
		f.bool(v.Error == "", vl(v)...)
	})
	each("carpd_vhid_advbase_seconds", gauge, "Configured advertisement base interval.", func(f *family, v *vhid) {
		f.add(v.AdvBase, vl(v)...)
	})
	each("carpd_vhid_advskew", gauge, "Configured advertisement skew (1/256 s).", func(f *family, v *vhid) {
		f.add(v.AdvSkew, vl(v)...)
	})
	each("carpd_vhid_demotion", gauge, "Demotion a vhid advertises: its groups' counters plus its own sources, at most 255.", func(f *family, v *vhid) {
		f.add(v.Demotion, vl(v)...)
	})
	each("carpd_vhid_peer_demotion", gauge, "Demotion in the last advertisement heard from the master (absent when none was heard).", func(f *family, v *vhid) {
		if v.PeerDemotion != nil {
			f.add(*v.PeerDemotion, vl(v)...)
		}
	})
	each("carpd_vhid_peer_advskew", gauge, "Advskew in the last advertisement heard from the master (absent when none was heard).", func(f *family, v *vhid) {
		if v.PeerAdvSkew != nil {
			f.add(*v.PeerAdvSkew, vl(v)...)
		}
	})
	each("carpd_vhid_group", gauge, "Always 1; a demotion group a vhid is in.", func(f *family, v *vhid) {
		for _, g := range v.Groups {
			f.add(1, vl(v, label{"group", g})...)
		}
	})
	each("carpd_vhid_demotion_source", gauge, "A non-zero demotion source that counts for a vhid (group \"\": the vhid's own).", func(f *family, v *vhid) {
		for _, s := range v.DemotionSources {
			f.add(s.Value, vl(v, label{"group", s.Group}, label{"source", s.Name})...)
		}
	})
	each("carpd_vhid_adverts_sent_total", counter, "CARP advertisements sent.", func(f *family, v *vhid) {
		f.add(v.Counters["adverts_sent"], vl(v)...)
	})
	each("carpd_vhid_adverts_received_total", counter, "CARP advertisements received and accepted.", func(f *family, v *vhid) {
		f.add(v.Counters["adverts_received"], vl(v)...)
	})
	each("carpd_vhid_adverts_dropped_total", counter, "CARP advertisements dropped, by reason.", func(f *family, v *vhid) {
		for _, r := range advertDrops {
			f.add(v.Counters[r], vl(v, label{"reason", r})...)
		}
	})
	each("carpd_vhid_send_errors_total", counter, "Advertisements that could not be sent.", func(f *family, v *vhid) {
		f.add(v.Counters["send_errors"], vl(v)...)
	})
	each("carpd_vhid_transitions_total", counter, "CARP state transitions of a vhid.", func(f *family, v *vhid) {
		f.add(v.Counters["transitions"], vl(v)...)
	})
}

func renderInterfaces(e *exposition, st *status) {
	f := e.family("carpd_interface_link_up", gauge, "1 when the link (carrier) of an interface carpd runs CARP on is up.")
	for _, i := range st.Interfaces {
		f.bool(i.LinkUp, label{"interface", i.Name})
	}
	f = e.family("carpd_interface_dropped_total", counter, "Packets received on an interface and dropped before any vhid, by reason.")
	for _, i := range st.Interfaces {
		for _, r := range ifaceDrops {
			f.add(i.Drops[r], label{"interface", i.Name}, label{"reason", r})
		}
	}
}

func renderTrackers(e *exposition, st *status) {
	ts := st.Trackers
	each := func(name, typ, help string, fn func(f *family, t *tracker, l label)) {
		f := e.family(name, typ, help)
		for i := range ts {
			fn(f, &ts[i], label{"tracker", ts[i].Name})
		}
	}
	each("carpd_tracker_info", gauge, "Always 1; a tracker's type and the demotion group it raises.", func(f *family, t *tracker, l label) {
		f.add(1, l, label{"type", t.Type}, label{"group", t.Group})
	})
	each("carpd_tracker_state", gauge, "1 for the state a tracker is in (init, up, down), 0 for the others.", func(f *family, t *tracker, l label) {
		for _, s := range trackerStates {
			f.bool(t.State == s, l, label{"state", s})
		}
	})
	each("carpd_tracker_state_since_timestamp_seconds", gauge, "When a tracker entered its state, in seconds since the Unix epoch.", func(f *family, t *tracker, l label) {
		if !t.Since.IsZero() {
			f.add(unix(t.Since), l)
		}
	})
	each("carpd_tracker_demotion", gauge, "Demotion a tracker adds to its group now (its weight while down; a file tracker's value).", func(f *family, t *tracker, l label) {
		f.add(t.Value, l)
	})
	each("carpd_tracker_weight", gauge, "Demotion a tracker adds while down.", func(f *family, t *tracker, l label) {
		f.add(t.Weight, l)
	})
	each("carpd_tracker_error", gauge, "1 while a tracker reports an error (it cannot probe; see carpd status).", func(f *family, t *tracker, l label) {
		f.bool(t.Error != "", l)
	})
	each("carpd_tracker_rounds_total", counter, "Probe rounds of a tracker, by result (good, bad).", func(f *family, t *tracker, l label) {
		f.add(t.Good, l, label{"result", "good"})
		f.add(t.Bad, l, label{"result", "bad"})
	})
	each("carpd_tracker_target_sent_total", counter, "ICMP echo requests a ping tracker sent to a target.", func(f *family, t *tracker, l label) {
		for _, x := range t.Targets {
			f.add(x.Sent, l, label{"target", x.Address})
		}
	})
	each("carpd_tracker_target_received_total", counter, "ICMP echo replies a ping tracker received from a target.", func(f *family, t *tracker, l label) {
		for _, x := range t.Targets {
			f.add(x.Received, l, label{"target", x.Address})
		}
	})
	each("carpd_tracker_target_rtt_seconds", gauge, "Round-trip time of a target's last answered echo.", func(f *family, t *tracker, l label) {
		for _, x := range t.Targets {
			f.add(x.RTTms/1000, l, label{"target", x.Address})
		}
	})
	each("carpd_tracker_dropped_total", counter, "Packets a tracker received and ignored, by reason.", func(f *family, t *tracker, l label) {
		for _, r := range sortedKeys(t.Dropped) {
			f.add(t.Dropped[r], l, label{"reason", r})
		}
	})
}

func renderSplitBrain(e *exposition, st *status) {
	if st.SplitBrainAlarms != nil {
		e.family("carpd_split_brain_alarms_total", counter, "Split-brain alarms raised (both routers MASTER of a vhid for longer than master-down).").add(*st.SplitBrainAlarms)
		e.family("carpd_split_brain_active", gauge, "vhids with a split brain now.").add(float64(len(st.SplitBrain)))
	}
	f := e.family("carpd_split_brain_since_timestamp_seconds", gauge, "When a vhid's current split brain was detected, in seconds since the Unix epoch.")
	for _, s := range st.SplitBrain {
		f.add(unix(s.Since), label{"interface", s.Interface}, label{"vhid", strconv.Itoa(s.VHID)})
	}
}

func renderSync(e *exposition, s *syncStatus) {
	e.family("carpd_sync_enabled", gauge, "1 when connection-state sync is configured.").bool(s.Enabled)
	if !s.Enabled {
		return
	}
	state := "down"
	switch {
	case s.Error != "":
		state = "error"
	case s.Established:
		state = "established"
	case s.HandshakeFailing:
		state = "refused"
	case s.PeerUp:
		state = "handshaking"
	}
	f := e.family("carpd_sync_link_state", gauge, "1 for the state of the sync link (error: not running; down: peer silent; handshaking; refused: the peer's handshake fails; established), 0 for the others.")
	for _, x := range syncStates {
		f.bool(state == x, label{"state", x})
	}
	if s.Error != "" {
		return
	}
	e.family("carpd_sync_peer_up", gauge, "1 while the sync peer is heard.").bool(s.PeerUp)
	if !s.LastAck.IsZero() {
		e.family("carpd_sync_last_ack_timestamp_seconds", gauge, "When the peer last acknowledged, in seconds since the Unix epoch.").add(unix(s.LastAck))
	}
	if d, err := time.ParseDuration(s.RTT); err == nil && s.RTT != "" {
		e.family("carpd_sync_rtt_seconds", gauge, "Round-trip time to the sync peer.").add(d.Seconds())
	}
	f = e.family("carpd_sync_flows", gauge, "Flows by kind: local (replicated to the peer), synced (of those, acknowledged), pending (waiting to be sent), from_peer (the peer's, in our kernel).")
	f.add(s.FlowsLocal, label{"kind", "local"})
	f.add(s.FlowsSynced, label{"kind", "synced"})
	f.add(s.FlowsPending, label{"kind", "pending"})
	f.add(s.FlowsPeer, label{"kind", "from_peer"})
	e.family("carpd_sync_bulk_complete", gauge, "1 once the initial transfer of the peer's table is over (received, or given up).").bool(s.Bulk.Synced)
	e.family("carpd_sync_bulk_timed_out", gauge, "1 when the wait for the peer's table was given up.").bool(s.Bulk.TimedOut)
	e.family("carpd_sync_bulk_received_flows", gauge, "Flows of the peer's table received in the initial transfer.").add(s.Bulk.Received)
	e.family("carpd_sync_bulk_serving", gauge, "1 while our table is being sent to the peer.").bool(s.Bulk.Serving)
	e.family("carpd_sync_bulk_queued_flows", gauge, "Flows of our table still to send to the peer.").add(s.Bulk.Queued)
	for _, c := range syncCounters {
		e.family(c.name, counter, c.help).add(s.Counters[c.key])
	}
	f = e.family("carpd_sync_dropped_total", counter, "Frames or flow records from the sync peer dropped, by reason.")
	for _, r := range syncDrops {
		f.add(s.Counters["drop_"+r], label{"reason", r})
	}
	f = e.family("carpd_sync_refused_flows_total", counter, "Peer flows our own sync filter refused, by rule.")
	for _, r := range syncRefused {
		f.add(s.Counters["refused_"+r], label{"reason", r})
	}
}

// unix is t in seconds since the epoch, to the millisecond.
func unix(t time.Time) float64 {
	return float64(t.UnixMilli()) / 1000
}
