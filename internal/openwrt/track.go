package openwrt

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/config"
)

// trackOptions are the options of a `config track` section and the types
// that use them ("" = every type).
var trackOptions = map[string][]string{
	"type": nil, "interval": nil, "timeout": nil, "down": nil, "up": nil, "group": nil,
	"weight":      {config.TrackPing, config.TrackInterface, config.TrackScript, config.TrackProcess},
	"target":      {config.TrackPing},
	"reliability": {config.TrackPing},
	"device":      {config.TrackPing, config.TrackInterface},
	"command":     {config.TrackScript},
	"path":        {config.TrackFile},
	"name":        {config.TrackProcess},
}

// trackErrorf records an error about option o (nil: the section) of track
// section s, as "FILE:LINE: track 'NAME': option X: ...".
func (m *mapper) trackErrorf(s *Section, opt string, line int, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if opt != "" {
		msg = "option " + opt + ": " + msg
		m.bad[badKey{s, opt}] = true
	}
	head := fmt.Sprintf("track '%s': ", s.Name)
	if s.Anonymous {
		head = "track: " // its generated name would mean nothing to the reader
	}
	m.errs = append(m.errs, &ConfigError{File: m.file, Line: line, Section: s.Name, Msg: head + msg})
}

// track maps one `config track` section onto a config.Track
// (docs/trackers.md). Bad values are errors at their line; options that
// the type does not use are warnings.
func (m *mapper) track(s *Section) {
	if s.Anonymous {
		m.trackErrorf(s, "", s.Line, "a track section needs a name: `config track 'NAME'` (the name is its demotion source)")
		return
	}
	if s.Name == "global" {
		// config.Validate names the carpd section "global".
		m.trackErrorf(s, "", s.Line, "the name %q is reserved; call the tracker something else", s.Name)
		return
	}
	if m.tracks == nil {
		m.tracks = map[string]*Section{}
	}
	t := config.DefaultTrack(s.Name)
	timeoutSet := false
	single := func(o *Option) (string, bool) {
		if o.List || len(o.Values) != 1 {
			m.trackErrorf(s, o.Name, o.Line, "must be a single value: use option, not list")
			return "", false
		}
		return o.Values[0], true
	}
	count := func(o *Option, lo, hi int, dst *int) {
		v, ok := single(o)
		if !ok {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || !isDigits(v) || n < lo || n > hi {
			m.trackErrorf(s, o.Name, o.Line, "must be an integer %d-%d, not %q", lo, hi, v)
			return
		}
		*dst = n
	}
	seconds := func(o *Option, dst *time.Duration) bool {
		v, ok := single(o)
		if !ok {
			return false
		}
		d, err := parseSeconds(v)
		if err != nil {
			m.trackErrorf(s, o.Name, o.Line, "%v", err)
			return false
		}
		*dst = d
		return true
	}
	for _, o := range s.Options {
		switch o.Name {
		case "type":
			if v, ok := single(o); ok {
				t.Type = v
			}
		case "target":
			for i, v := range o.Values {
				a, err := netip.ParseAddr(v)
				switch {
				case err != nil:
					m.trackErrorf(s, o.Name, o.ValueLines[i], "must be an IPv4 or IPv6 address, not %q", v)
				case a.IsUnspecified() || a.IsMulticast():
					m.trackErrorf(s, o.Name, o.ValueLines[i], "%s is not a unicast address", a)
				case a.Zone() != "" && !a.Is6():
					m.trackErrorf(s, o.Name, o.ValueLines[i], "must be an IPv4 or IPv6 address, not %q", v)
				default:
					t.Targets = append(t.Targets, a.Unmap())
				}
			}
		case "device":
			if v, ok := single(o); ok {
				t.Device = v
			}
		case "interval":
			seconds(o, &t.Interval)
		case "timeout":
			// A bad value is reported here; no default goes over it.
			seconds(o, &t.Timeout)
			timeoutSet = true
		case "reliability":
			count(o, 1, 255, &t.Reliability)
		case "down":
			count(o, 1, config.MaxTrackRounds, &t.Down)
		case "up":
			count(o, 1, config.MaxTrackRounds, &t.Up)
		case "group":
			if v, ok := single(o); ok {
				if !config.ValidGroup(v) {
					m.trackErrorf(s, o.Name, o.Line, "%q is not a group name: 1-%d of A-Z a-z 0-9 _ -", v, config.MaxGroupLen)
				} else {
					t.Group = v
				}
			}
		case "weight":
			count(o, 1, 255, &t.Weight)
		case "command":
			if o.List {
				t.Command = append([]string(nil), o.Values...)
			} else if v, ok := single(o); ok {
				// One string: split on blanks, no quoting or expansion
				// (a shell is `option command 'sh -c ...'` only as a
				// list: list command 'sh', list command '-c', ...).
				t.Command = strings.Fields(v)
			}
		case "path":
			if v, ok := single(o); ok {
				t.Path = v
			}
		case "name":
			if v, ok := single(o); ok {
				t.Process = v
			}
		default:
			m.unknown(o)
		}
	}
	if !timeoutSet {
		t.Timeout = config.DefaultTimeout(t.Interval)
	}
	// Options that the type does not use: most often a copy-paste left
	// over; the tracker works without them.
	for _, o := range s.Options {
		types, known := trackOptions[o.Name]
		if !known || types == nil || t.Type == "" || !isTrackType(t.Type) || slices.Contains(types, t.Type) {
			continue
		}
		m.warnf(o.Line, "track '%s': option %s is not used by %s trackers; ignored", s.Name, o.Name, t.Type)
	}
	m.tracks[s.Name] = s
	m.cfg.Tracks = append(m.cfg.Tracks, t)
}

func isTrackType(t string) bool {
	switch t {
	case config.TrackPing, config.TrackInterface, config.TrackScript, config.TrackFile, config.TrackProcess:
		return true
	}
	return false
}

// parseSeconds reads a tracker's time: seconds with decimals ("1", "0.2",
// "1.5") or a Go duration ("200ms").
func parseSeconds(v string) (time.Duration, error) {
	bad := fmt.Errorf("must be seconds such as 1, 0.2 or 1.5 (or a duration such as 200ms), not %q", v)
	if v == "" {
		return 0, bad
	}
	if c := v[0]; c >= '0' && c <= '9' || c == '.' {
		if f, err := strconv.ParseFloat(v, 64); err == nil && strings.Trim(v, "0123456789.") == "" {
			if f <= 0 || f > 3600 || math.IsNaN(f) {
				return 0, fmt.Errorf("must be more than 0 and at most 3600 seconds, not %q", v)
			}
			return time.Duration(math.Round(f * float64(time.Second))), nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+") {
		return 0, bad
	}
	if d <= 0 || d > time.Hour {
		return 0, fmt.Errorf("must be more than 0 and at most 3600 seconds, not %q", v)
	}
	return d, nil
}

// vhidGroups parses a vhid's `list group`.
func (m *mapper) vhidGroups(s *Section, o *Option) []string {
	var out []string
	for i, v := range o.Values {
		switch {
		case !config.ValidGroup(v):
			m.errorf(s, o, o.ValueLines[i], "%q is not a group name: 1-%d of A-Z a-z 0-9 _ -", v, config.MaxGroupLen)
		case v == config.DefaultGroup:
			m.warnf(o.ValueLines[i], "vhid section %q: every vhid is in group %s; listing it changes nothing", s.Name, v)
		case slices.Contains(out, v):
			m.warnf(o.ValueLines[i], "vhid section %q: group %s is listed twice", s.Name, v)
		default:
			out = append(out, v)
		}
	}
	return out
}

// trackWarnings warns about groups that nothing connects: a tracker whose
// group no vhid is in demotes nothing.
func (m *mapper) trackWarnings() {
	in := map[string]bool{config.DefaultGroup: true}
	for _, v := range m.cfg.VHIDs {
		for _, g := range v.Groups {
			in[g] = true
		}
	}
	for _, t := range m.cfg.Tracks {
		if !in[t.Group] {
			s := m.tracks[t.Name]
			line := s.Line
			if o := s.Option("group"); o != nil {
				line = o.Line
			}
			m.warnf(line, "track '%s': no vhid is in group %s (list group in a vhid section), so it demotes nothing", t.Name, t.Group)
		}
	}
}

// trackValidateError places a config.Validate error about a tracker at the
// line of its option (or section).
func (m *mapper) trackValidateError(s *Section, fe *config.FieldError) {
	if fe.Option != "" && m.bad[badKey{s, fe.Option}] {
		return // already reported as a bad value
	}
	line := s.Line
	if o := s.Option(fe.Option); o != nil {
		line = o.Line
	}
	m.trackErrorf(s, fe.Option, line, "%s", fe.Msg)
}
