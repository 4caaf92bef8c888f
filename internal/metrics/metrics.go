package metrics

import (
	"errors"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/carpd/carpd/ubus/json"
)

// A status document is read as JSON objects, lists and numbers, not into
// Go structs: a field of another type or a missing one just leaves its
// samples out, and the daemon binary gets no type information to decode
// (docs/size-budget.md: this package costs the mips binary about 40 KB,
// half of what decoding into structs did).
type object = map[string]any

// family describes one metric family and where its samples come from.
//
// each is the path of the list whose elements give one sample (or one
// group of samples) each: "" for the document itself, an object counts as
// a list of one. sub is a list inside each element whose elements give the
// samples instead (a string element is itself the value of the label the
// sub list names). field is the path of the value in the element (or sub
// element). kind says what the value is:
//
//	'n'  a number, or a bool as 1/0 (a missing field: no sample)
//	'z'  the same, a missing field counting as 0 (omitted when empty)
//	'1'  always 1 (an info metric: its labels carry the facts)
//	't'  an RFC 3339 time, as Unix seconds (the zero time: no sample)
//	'k'  milliseconds, as seconds (to the microsecond)
//	'd'  a Go duration string, as seconds
//	'e'  1 when the field is empty or missing (no error), 0 otherwise
//	'E'  the opposite: 1 while there is an error
//	's'  one sample per state in keys, label "state": 1 for the field's value
//	'r'  one sample per reason in keys, label "reason", value field+reason
//	'm'  the same for every key of the object at field, in order
//	'R'  the element's good and bad rounds, label "result"
//
// extra are labels taken from the element: "name=path".
type family struct {
	name, typ, help string
	each, sub       string
	field           string
	kind            byte
	keys            []string
	extra           []string
	label           string // 'r', 'm': the label's name, "reason" if ""
}

// nameOf returns the labels that name an element of a list, as
// "label=path" ("label=" for a list of names; docs/metrics.md).
func nameOf(list string) []string {
	switch list {
	case "vhids", "split_brain":
		return []string{"interface=interface", "vhid=vhid"}
	case "interfaces":
		return []string{"interface=name"}
	case "trackers":
		return []string{"tracker=name"}
	case "services":
		return []string{"service=name"}
	case "demotion.groups":
		return []string{"group=name"}
	case "sources":
		return []string{"source=name"}
	case "demotion_sources":
		return []string{"group=group", "source=name"}
	case "targets":
		return []string{"target=address"}
	case "groups":
		return []string{"group="}
	}
	return nil
}

const (
	gauge   = "gauge"
	counter = "counter"
)

var (
	vhidStates    = []string{"INIT", "BACKUP", "MASTER"}
	trackerStates = []string{"init", "up", "down"}
	// syncStates are derived by linkState.
	syncStates  = []string{"error", "down", "handshaking", "refused", "established"}
	advertDrops = []string{"bad_checksum", "bad_hmac", "bad_ttl", "bad_version_or_length", "own_packet",
		"queue_overflow", "stale_sequence", "timing_mismatch", "format_downgrade"}
	ifaceDrops = []string{"unknown_vhid", "too_short", "read_errors"}
	syncDrops  = []string{"auth", "replay", "epoch", "malformed", "wrong_source", "queue_full", "invalid_flow",
		"unknown_id", "oversize", "peer_table_full"}
	syncRefused = []string{"protocol", "address", "local", "zone", "mark", "state", "clash"}
)

// The families, in the order they are written. "_sync_on" is the sync
// object when sync is configured, "_sync_ok" when it also runs (render
// adds both).
var families = []family{
	{name: "carpd_up", typ: gauge, help: "1 when carpd answered the status request, 0 when it could not be reached.", kind: '1'},
	{name: "carpd_info", typ: gauge, help: "Always 1; the version of the running carpd.", kind: '1', extra: []string{"version=version"}},
	{name: "carpd_start_time_seconds", typ: gauge, help: "When carpd started, in seconds since the Unix epoch.", field: "started", kind: 't'},
	{name: "carpd_reloads_total", typ: counter, help: "Configuration reloads that succeeded.", field: "reloads", kind: 'n'},
	{name: "carpd_transitions_dropped_total", typ: counter, help: "State transitions not passed on to status, hooks and ubus (the daemon did not keep up).", field: "transitions_dropped", kind: 'z'},
	{name: "carpd_maintenance", typ: gauge, help: "1 while maintenance mode is on (every vhid demoted by 240).", field: "demotion.maintenance", kind: 'n'},
	{name: "carpd_maintenance_wait", typ: gauge, help: "1 for the state of the running or last `carpd maintenance --wait` (waiting, done, failed).", each: "maintenance_wait", field: "state", kind: 's', keys: []string{"waiting", "done", "failed"}},

	{name: "carpd_group_demotion", typ: gauge, help: "Demotion counter of a demotion group: the sum of its sources.", each: "demotion.groups", field: "demotion", kind: 'n'},
	{name: "carpd_demotion_source", typ: gauge, help: "Value of one named demotion source of a group.", each: "demotion.groups", sub: "sources", field: "value", kind: 'n'},
	{name: "carpd_demotion_source_since_timestamp_seconds", typ: gauge, help: "When a demotion source took its value, in seconds since the Unix epoch.", each: "demotion.groups", sub: "sources", field: "since", kind: 't'},
	{name: "carpd_demotion_source_expiry_timestamp_seconds", typ: gauge, help: "When a demotion source set with a TTL expires, in seconds since the Unix epoch.", each: "demotion.groups", sub: "sources", field: "expires", kind: 't'},

	{name: "carpd_vhid_info", typ: gauge, help: "Always 1; the OpenWrt network a vhid's interface was configured as.", each: "vhids", kind: '1', extra: []string{"network=network"}},
	{name: "carpd_vhid_state", typ: gauge, help: "1 for the CARP state a vhid is in (INIT, BACKUP, MASTER), 0 for the others.", each: "vhids", field: "state", kind: 's', keys: vhidStates},
	{name: "carpd_vhid_state_since_timestamp_seconds", typ: gauge, help: "When a vhid entered its state, in seconds since the Unix epoch.", each: "vhids", field: "since", kind: 't'},
	{name: "carpd_vhid_running", typ: gauge, help: "1 when a vhid runs, 0 when it could not be started (see carpd status).", each: "vhids", field: "error", kind: 'e'},
	{name: "carpd_vhid_advbase_seconds", typ: gauge, help: "Configured advertisement base interval.", each: "vhids", field: "advbase", kind: 'n'},
	{name: "carpd_vhid_advskew", typ: gauge, help: "Configured advertisement skew (1/256 s).", each: "vhids", field: "advskew", kind: 'n'},
	{name: "carpd_vhid_demotion", typ: gauge, help: "Demotion a vhid advertises: its groups' counters plus its own sources, at most 255.", each: "vhids", field: "demotion", kind: 'n'},
	{name: "carpd_vhid_peer_demotion", typ: gauge, help: "Demotion in the last advertisement heard from the master (absent when none was heard).", each: "vhids", field: "peer_demotion", kind: 'n'},
	{name: "carpd_vhid_peer_advskew", typ: gauge, help: "Advskew in the last advertisement heard from the master (absent when none was heard).", each: "vhids", field: "peer_advskew", kind: 'n'},
	{name: "carpd_vhid_group", typ: gauge, help: "Always 1; a demotion group a vhid is in.", each: "vhids", sub: "groups", kind: '1'},
	{name: "carpd_vhid_demotion_source", typ: gauge, help: "A non-zero demotion source that counts for a vhid (group \"\": the vhid's own).", each: "vhids", sub: "demotion_sources", field: "value", kind: 'n'},
	{name: "carpd_vhid_adverts_sent_total", typ: counter, help: "CARP advertisements sent.", each: "vhids", field: "counters.adverts_sent", kind: 'n'},
	{name: "carpd_vhid_adverts_received_total", typ: counter, help: "CARP advertisements received and accepted.", each: "vhids", field: "counters.adverts_received", kind: 'n'},
	{name: "carpd_vhid_adverts_dropped_total", typ: counter, help: "CARP advertisements dropped, by reason.", each: "vhids", field: "counters.", kind: 'r', keys: advertDrops},
	{name: "carpd_vhid_send_errors_total", typ: counter, help: "Advertisements that could not be sent.", each: "vhids", field: "counters.send_errors", kind: 'n'},
	{name: "carpd_vhid_transitions_total", typ: counter, help: "CARP state transitions of a vhid.", each: "vhids", field: "counters.transitions", kind: 'n'},

	{name: "carpd_interface_link_up", typ: gauge, help: "1 when the link (carrier) of an interface carpd runs CARP on is up.", each: "interfaces", field: "link_up", kind: 'n'},
	{name: "carpd_interface_dropped_total", typ: counter, help: "Packets received on an interface and dropped before any vhid, by reason.", each: "interfaces", field: "drops.", kind: 'r', keys: ifaceDrops},

	{name: "carpd_tracker_info", typ: gauge, help: "Always 1; a tracker's type and the demotion group it raises.", each: "trackers", kind: '1', extra: []string{"type=type", "group=group"}},
	{name: "carpd_tracker_state", typ: gauge, help: "1 for the state a tracker is in (init, up, down), 0 for the others.", each: "trackers", field: "state", kind: 's', keys: trackerStates},
	{name: "carpd_tracker_state_since_timestamp_seconds", typ: gauge, help: "When a tracker entered its state, in seconds since the Unix epoch.", each: "trackers", field: "since", kind: 't'},
	{name: "carpd_tracker_demotion", typ: gauge, help: "Demotion a tracker adds to its group now (its weight while down; a file tracker's value).", each: "trackers", field: "value", kind: 'n'},
	{name: "carpd_tracker_weight", typ: gauge, help: "Demotion a tracker adds while down.", each: "trackers", field: "weight", kind: 'n'},
	{name: "carpd_tracker_error", typ: gauge, help: "1 while a tracker reports an error (it cannot probe; see carpd status).", each: "trackers", field: "error", kind: 'E'},
	{name: "carpd_tracker_rounds_total", typ: counter, help: "Probe rounds of a tracker, by result (good, bad).", each: "trackers", kind: 'R'},
	{name: "carpd_tracker_target_sent_total", typ: counter, help: "ICMP echo requests a ping tracker sent to a target.", each: "trackers", sub: "targets", field: "sent", kind: 'n'},
	{name: "carpd_tracker_target_received_total", typ: counter, help: "ICMP echo replies a ping tracker received from a target.", each: "trackers", sub: "targets", field: "received", kind: 'n'},
	{name: "carpd_tracker_target_rtt_seconds", typ: gauge, help: "Round-trip time of a target's last answered echo.", each: "trackers", sub: "targets", field: "rtt_ms", kind: 'k'},
	{name: "carpd_tracker_dropped_total", typ: counter, help: "Packets a tracker received and ignored, by reason.", each: "trackers", field: "dropped", kind: 'm'},

	{name: "carpd_service_info", typ: gauge, help: "Always 1; the init script or unit a service role runs and the backend of its last action.", each: "services", kind: '1', extra: []string{"unit=service", "backend=backend"}},
	{name: "carpd_service_role", typ: gauge, help: "1 for the role of a service (unknown, backup, master), 0 for the others.", each: "services", field: "role", kind: 's', keys: []string{"unknown", "backup", "master"}},
	{name: "carpd_service_action_result", typ: gauge, help: "1 for the result of a service's last action (running, ok, failed), 0 for the others (all 0 before the first).", each: "services", field: "result", kind: 's', keys: []string{"running", "ok", "failed"}},
	{name: "carpd_service_action_timestamp_seconds", typ: gauge, help: "When a service's last action ended (or started, while running), in seconds since the Unix epoch.", each: "services", field: "time", kind: 't'},

	{name: "carpd_split_brain_alarms_total", typ: counter, help: "Split-brain alarms raised (both routers MASTER of a vhid for longer than master-down).", field: "split_brain_alarms", kind: 'n'},
	{name: "carpd_split_brain_since_timestamp_seconds", typ: gauge, help: "When a vhid's current split brain was detected, in seconds since the Unix epoch.", each: "split_brain", field: "since", kind: 't'},

	{name: "carpd_sync_enabled", typ: gauge, help: "1 when connection-state sync is configured.", field: "sync.enabled", kind: 'n'},
	{name: "carpd_sync_link_state", typ: gauge, help: "1 for the state of the sync link (error: not running; down: peer silent; handshaking; refused: the peer's handshake fails; established), 0 for the others.", each: "_sync_on", field: "_state", kind: 's', keys: syncStates},
	{name: "carpd_sync_peer_up", typ: gauge, help: "1 while the sync peer is heard.", each: "_sync_ok", field: "peer_up", kind: 'n'},
	{name: "carpd_sync_last_ack_timestamp_seconds", typ: gauge, help: "When the peer last acknowledged, in seconds since the Unix epoch.", each: "_sync_ok", field: "last_ack", kind: 't'},
	{name: "carpd_sync_rtt_seconds", typ: gauge, help: "Round-trip time to the sync peer.", each: "_sync_ok", field: "rtt", kind: 'd'},
	{name: "carpd_sync_flows", typ: gauge, help: "Flows by kind: local (replicated to the peer), synced (of those, acknowledged), pending (waiting to be sent), from_peer (the peer's, in our kernel).", each: "_sync_ok", field: "flows_", kind: 'r', keys: []string{"local", "synced", "pending", "from_peer"}, label: "kind"},
	{name: "carpd_sync_bulk_complete", typ: gauge, help: "1 once the initial transfer of the peer's table is over (received, or given up).", each: "_sync_ok", field: "bulk.synced", kind: 'n'},
	{name: "carpd_sync_bulk_timed_out", typ: gauge, help: "1 when the wait for the peer's table was given up.", each: "_sync_ok", field: "bulk.timed_out", kind: 'n'},
	{name: "carpd_sync_bulk_received_flows", typ: gauge, help: "Flows of the peer's table received in the initial transfer.", each: "_sync_ok", field: "bulk.received", kind: 'n'},
	{name: "carpd_sync_bulk_serving", typ: gauge, help: "1 while our table is being sent to the peer.", each: "_sync_ok", field: "bulk.serving", kind: 'n'},
	{name: "carpd_sync_bulk_queued_flows", typ: gauge, help: "Flows of our table still to send to the peer.", each: "_sync_ok", field: "bulk.queued", kind: 'n'},
	{name: "carpd_sync_sent_bytes_total", typ: counter, help: "Bytes sent to the sync peer.", each: "_sync_ok", field: "counters.bytes_sent", kind: 'n'},
	{name: "carpd_sync_received_bytes_total", typ: counter, help: "Bytes received from the sync peer.", each: "_sync_ok", field: "counters.bytes_received", kind: 'n'},
	{name: "carpd_sync_sent_frames_total", typ: counter, help: "Frames sent to the sync peer.", each: "_sync_ok", field: "counters.frames_sent", kind: 'n'},
	{name: "carpd_sync_received_frames_total", typ: counter, help: "Frames received from the sync peer.", each: "_sync_ok", field: "counters.frames_received", kind: 'n'},
	{name: "carpd_sync_sent_records_total", typ: counter, help: "Flow records sent to the sync peer.", each: "_sync_ok", field: "counters.records_sent", kind: 'n'},
	{name: "carpd_sync_received_records_total", typ: counter, help: "Flow records received from the sync peer.", each: "_sync_ok", field: "counters.records_received", kind: 'n'},
	{name: "carpd_sync_retransmitted_flows_total", typ: counter, help: "Flows sent again because the peer did not acknowledge them in time.", each: "_sync_ok", field: "counters.flows_resent", kind: 'n'},
	{name: "carpd_sync_wanted_flows_total", typ: counter, help: "Flows asked of the peer again (anti-entropy: we lacked them).", each: "_sync_ok", field: "counters.flows_wanted", kind: 'n'},
	{name: "carpd_sync_repaired_flows_total", typ: counter, help: "Flows sent again on the peer's request.", each: "_sync_ok", field: "counters.flows_repaired", kind: 'n'},
	{name: "carpd_sync_purged_stale_flows_total", typ: counter, help: "Peer flows deleted because the peer no longer has them.", each: "_sync_ok", field: "counters.flows_purged_stale", kind: 'n'},
	{name: "carpd_sync_never_sent_flows_total", typ: counter, help: "Flows that ended before they were sent (short-lived).", each: "_sync_ok", field: "counters.flows_never_sent", kind: 'n'},
	{name: "carpd_sync_kernel_overruns_total", typ: counter, help: "Conntrack event overruns (each answered by a table resync).", each: "_sync_ok", field: "counters.kernel_overruns", kind: 'n'},
	{name: "carpd_sync_clamped_timeouts_total", typ: counter, help: "Peer flow timeouts cut to the kernel's default.", each: "_sync_ok", field: "counters.timeouts_clamped", kind: 'n'},
	{name: "carpd_sync_apply_errors_total", typ: counter, help: "Peer flows the kernel refused to take.", each: "_sync_ok", field: "counters.apply_errors", kind: 'n'},
	{name: "carpd_sync_send_errors_total", typ: counter, help: "Frames that could not be sent.", each: "_sync_ok", field: "counters.send_errors", kind: 'n'},
	{name: "carpd_sync_dropped_total", typ: counter, help: "Frames or flow records from the sync peer dropped, by reason.", each: "_sync_ok", field: "counters.drop_", kind: 'r', keys: syncDrops},
	{name: "carpd_sync_refused_flows_total", typ: counter, help: "Peer flows our own sync filter refused, by rule.", each: "_sync_ok", field: "counters.refused_", kind: 'r', keys: syncRefused},
}

var errNotStatus = errors.New("metrics: the status is not a JSON object")

// Write renders the status document js (carpd status --json) as metrics.
// It fails only when js is not a JSON object; then nothing is written.
func Write(w io.Writer, js []byte) error {
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return errors.Join(errNotStatus, err)
	}
	st, ok := doc.(object)
	if !ok {
		return errNotStatus
	}
	var e exposition
	render(&e, st)
	_, err := io.WriteString(w, e.b.String())
	return err
}

// WriteDown writes what a scrape shows when carpd does not answer:
// carpd_up 0, so that an alert can tell "down" from "no data".
func WriteDown(w io.Writer) error {
	var e exposition
	e.family(&families[0]).add(0, nil)
	_, err := io.WriteString(w, e.b.String())
	return err
}

func render(e *exposition, st object) {
	if s, ok := st["sync"].(object); ok && s["enabled"] == true {
		s["_state"] = linkState(s)
		st["_sync_on"] = s
		if s["_state"] != "error" {
			st["_sync_ok"] = s
		}
	}
	for i := range families {
		f := &families[i]
		out := e.family(f)
		for _, el := range list(st, f.each) {
			labels := nameLabels(f.each, el, nil)
			for _, x := range f.extra {
				name, path, _ := strings.Cut(x, "=")
				labels = append(labels, label{name, text(get(el, path))})
			}
			if f.sub == "" {
				sample(out, f, el, labels)
				continue
			}
			for _, sub := range list(el, f.sub) {
				sample(out, f, sub, nameLabels(f.sub, sub, labels))
			}
		}
	}
}

// linkState sums up the sync link in one word (syncStates).
func linkState(s object) string {
	switch {
	case text(s["error"]) != "":
		return "error"
	case s["established"] == true:
		return "established"
	case s["handshake_failing"] == true:
		return "refused"
	case s["peer_up"] == true:
		return "handshaking"
	}
	return "down"
}

// sample writes the samples of f for one element el.
func sample(out *familyWriter, f *family, el any, labels []label) {
	v := get(el, f.field)
	switch f.kind {
	case '1':
		out.add(1, labels)
	case 'n', 'k', 'z':
		if n, ok := number(v); ok || f.kind == 'z' {
			if f.kind == 'k' {
				// To the microsecond: 4.2 ms is 0.0042, not
				// 0.004200000000000001.
				n = math.Round(n*1000) / 1e6
			}
			out.add(n, labels)
		}
	case 't':
		if t, err := time.Parse(time.RFC3339Nano, text(v)); err == nil && t.Year() > 1 {
			out.add(float64(t.UnixMilli())/1000, labels)
		}
	case 'd':
		if d, err := time.ParseDuration(text(v)); err == nil {
			out.add(d.Seconds(), labels)
		}
	case 'e', 'E':
		out.add(bool01((text(v) == "") == (f.kind == 'e')), labels)
	case 's':
		for _, k := range f.keys {
			out.add(bool01(text(v) == k), append(labels, label{"state", k}))
		}
	case 'R':
		for _, k := range []string{"good", "bad"} {
			if n, ok := number(get(el, k)); ok {
				out.add(n, append(labels, label{"result", k}))
			}
		}
	case 'r', 'm':
		keys := f.keys
		m, _ := v.(object)
		if f.kind == 'm' {
			keys = make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			// sort.Slice: sort.Strings would link another pdqsort.
			sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		}
		name := f.label
		if name == "" {
			name = "reason"
		}
		for _, k := range keys {
			x := get(el, f.field+k)
			if f.kind == 'm' {
				x = m[k]
			}
			if n, ok := number(x); ok {
				out.add(n, append(labels, label{name, k}))
			}
		}
	}
}

// nameLabels appends the labels that name el in the list named list.
func nameLabels(list string, el any, to []label) []label {
	labels := append([]label(nil), to...)
	for _, x := range nameOf(list) {
		name, path, _ := strings.Cut(x, "=")
		if path == "" {
			labels = append(labels, label{name, text(el)})
		} else {
			labels = append(labels, label{name, text(get(el, path))})
		}
	}
	return labels
}

// get follows a dotted path of object keys ("" is v itself); a trailing
// dot ends the path there (the 'r' fields append the key to it).
func get(v any, path string) any {
	for path != "" {
		key, rest, _ := strings.Cut(path, ".")
		m, ok := v.(object)
		if !ok {
			return nil
		}
		v, path = m[key], rest
	}
	return v
}

// list returns the elements at path: a list's, an object as a list of
// one, the document itself for "".
func list(v any, path string) []any {
	switch x := get(v, path).(type) {
	case []any:
		return x
	case object:
		return []any{x}
	}
	return nil
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case bool:
		return bool01(x), true
	}
	return 0, false
}

// text is a label value: strings as they are, numbers (a vhid) as the
// format writes them.
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return formatValue(x)
	case bool:
		return formatValue(bool01(x))
	}
	return ""
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
