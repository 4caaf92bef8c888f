package wire

import "encoding/binary"

// Extension control records: subtypes ctlExtFirst to 31 carry a uvarint
// body length after their first byte, so that a receiver skips the ones
// it does not know (Decoder.Next) instead of refusing the frame. CARP is
// the first of them. (Receivers older than this rule refuse the frame's
// records from the unknown one on, and count it drop_malformed: the
// engine sends extension records in frames of their own.)
const (
	ctlExtFirst = 16
	ctlCarp     = 16
	// maxExtBody bounds an extension record's body: one frame.
	maxExtBody = 1 << 11
)

// CarpState is one vhid's CARP state as a router tells its peer (the
// CARP record, docs/sync-protocol.md#carp-states).
type CarpState struct {
	Interface string // the device, 1 to MaxCarpIfaceLen bytes, '!' to '~'
	VHID      uint8  // 1 to 255
	State     uint8  // CarpInit, CarpBackup or CarpMaster
}

// CARP states on the wire (the numbering of carp.State).
const (
	CarpInit   = 0
	CarpBackup = 1
	CarpMaster = 2
)

// Limits of the CARP record.
const (
	// MaxCarpStates bounds Record.Carp: 48 states of the longest
	// interface names fit a frame of the default MTU.
	MaxCarpStates = 48
	// MaxCarpIfaceLen is Linux's IFNAMSIZ less the NUL.
	MaxCarpIfaceLen = 15
)

// Valid reports whether a CARP record can carry s.
func (s CarpState) Valid() bool { return carpStateOK(&s) }

func carpStateOK(s *CarpState) bool {
	if len(s.Interface) == 0 || len(s.Interface) > MaxCarpIfaceLen || s.VHID == 0 || s.State > CarpMaster {
		return false
	}
	for i := 0; i < len(s.Interface); i++ {
		if c := s.Interface[i]; c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// appendCarp writes a CARP record: 000 10000, uvarint body length, and
// the body: byte n (1 to MaxCarpStates), n × (byte name length, name,
// byte vhid, byte state).
func appendCarp(b []byte, states []CarpState) ([]byte, error) {
	if len(states) == 0 || len(states) > MaxCarpStates {
		return b, errCarp
	}
	body := 1
	for i := range states {
		if !carpStateOK(&states[i]) {
			return b, errCarp
		}
		body += 3 + len(states[i].Interface)
	}
	b = append(b, kindControl<<kindShift|ctlCarp)
	b = binary.AppendUvarint(b, uint64(body))
	b = append(b, byte(len(states)))
	for _, s := range states {
		b = append(b, byte(len(s.Interface)))
		b = append(b, s.Interface...)
		b = append(b, s.VHID, s.State)
	}
	return b, nil
}

// skipExtension reads the length of an extension record the decoder does
// not know and skips its body.
func (d *Decoder) skipExtension() {
	n := d.uvarintMax(maxExtBody)
	if d.rerr == nil {
		d.bytes(int(n))
	}
}

// decodeCarp reads a CARP record's body. Bytes after the n states, within
// the body length, are skipped: room for fields a later version adds.
func (d *Decoder) decodeCarp() {
	r := &d.rec
	r.Type = RecordCarp
	size := d.uvarintMax(maxExtBody)
	if d.rerr != nil {
		return
	}
	end := d.off + int(size)
	if end > len(d.b) {
		d.fail(errCarp)
		return
	}
	n := int(d.u8())
	if d.rerr != nil || n == 0 || n > MaxCarpStates {
		d.fail(errCarp)
		return
	}
	r.Carp = make([]CarpState, n)
	for i := range r.Carp {
		l := int(d.u8())
		name := d.bytes(l)
		s := CarpState{Interface: string(name), VHID: d.u8(), State: d.u8()}
		if d.rerr != nil || d.off > end || !carpStateOK(&s) {
			d.fail(errCarp)
			return
		}
		r.Carp[i] = s
	}
	d.off = end
}
