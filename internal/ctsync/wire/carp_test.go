package wire

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestCarpRecord(t *testing.T) {
	states := []CarpState{{Interface: "eth0", VHID: 1, State: CarpMaster}, {Interface: "br-lan.10", VHID: 255, State: CarpBackup},
		{Interface: strings.Repeat("x", MaxCarpIfaceLen), VHID: 7, State: CarpInit}}
	recs := []Record{{Type: RecordDelete, ID: 5}, {Type: RecordCarp, Carp: states}, {Type: RecordDelete, ID: 6}}
	b := mustAppend(t, recs)
	got, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(recs, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	// The golden bytes: 000 10000, body length, count, then per state
	// name length, name, vhid, state.
	one, err := (&Record{Type: RecordCarp, Carp: []CarpState{{Interface: "eth0", VHID: 1, State: CarpMaster}}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if h := hex.EncodeToString(one); h != "10080104657468300102" {
		t.Errorf("CARP record %s", h)
	}
	max := make([]CarpState, MaxCarpStates)
	for i := range max {
		max[i] = CarpState{Interface: strings.Repeat("y", MaxCarpIfaceLen), VHID: uint8(i + 1), State: CarpMaster}
	}
	if b, err := appendRecords(nil, []Record{{Type: RecordCarp, Carp: max}}); err != nil || len(b)+Overhead > 1200 {
		t.Errorf("the largest CARP record: %d bytes, %v; want it to fit a 1200-byte frame", len(b), err)
	}
	for _, bad := range [][]CarpState{nil, append(max, max[0]), {{Interface: "", VHID: 1}}, {{Interface: "eth0"}},
		{{Interface: "eth0", VHID: 1, State: 3}}, {{Interface: "eth 0", VHID: 1}}, {{Interface: strings.Repeat("z", 16), VHID: 1}}} {
		if _, err := appendRecords(nil, []Record{{Type: RecordCarp, Carp: bad}}); err == nil {
			t.Errorf("CARP %v encoded", bad)
		}
	}
}

// TestExtensionsSkipped: a CARP record with fields of a later version
// after its states, and extension records this version does not know,
// are read past; the records around them decode.
func TestExtensionsSkipped(t *testing.T) {
	for _, c := range []struct{ name, hex string }{
		{"CARP with a later field", "61 10 0a 01 04 65746830 01 02 ffff 62"},
		{"unknown extension 29", "61 1d 03 aabbcc 62"},
		{"unknown extension 31, empty", "61 1f 00 62"},
		{"two unknown ones in a row", "61 1d 00 1e 01 00 62"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := hex.DecodeString(strings.ReplaceAll(c.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeAll(b)
			if err != nil {
				t.Fatal(err)
			}
			var types []RecordType
			for _, r := range got {
				types = append(types, r.Type)
			}
			want := []RecordType{RecordDelete, RecordDelete}
			if strings.HasPrefix(c.name, "CARP") {
				want = []RecordType{RecordDelete, RecordCarp, RecordDelete}
				if s := got[1].Carp; len(s) != 1 || s[0] != (CarpState{Interface: "eth0", VHID: 1, State: CarpMaster}) {
					t.Errorf("states %+v", s)
				}
			}
			if d := diff(want, types); d != "" {
				t.Errorf("records (-want +got):\n%s", d)
			}
			if got[len(got)-1].ID != 3 {
				t.Errorf("the id context moved: last id %d, want 3 (1, then 2 more)", got[len(got)-1].ID)
			}
		})
	}
	// A stream of nothing but an unknown extension holds no record.
	if got, err := decodeAll([]byte{0x1d, 0}); err != nil || len(got) != 0 {
		t.Errorf("got %v, %v", got, err)
	}
}
