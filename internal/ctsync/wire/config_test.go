package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestConfigRecords(t *testing.T) {
	h := [ConfigHashLen]byte{1, 2, 3}
	recs := []Record{{Type: RecordDelete, ID: 5},
		{Type: RecordConfig, Config: &ConfigChunk{Name: "firewall", Hash: h, Total: 10, Offset: 4, Data: []byte("abcdef")}},
		{Type: RecordConfig, Config: &ConfigChunk{Flags: ConfigFile | ConfigForce, Name: "/etc/x", Hash: h}},
		{Type: RecordConfigAck, ConfigAck: &ConfigAck{Status: 2, Reason: 3, Name: "dhcp", Hash: h, Local: [ConfigHashLen]byte{9}}},
		{Type: RecordDelete, ID: 6}}
	got, err := decodeAll(mustAppend(t, recs))
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(recs, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	one, err := (&Record{Type: RecordConfig, Config: &ConfigChunk{Name: "a", Total: 1, Data: []byte("x")}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := "12 26 00 01 61" + strings.Repeat("00", 32) + "01 00 78"
	if hx := hex.EncodeToString(one); hx != strings.ReplaceAll(want, " ", "") {
		t.Errorf("CONFIG record %s, want %s", hx, want)
	}
	// The largest chunk the engine sends fits a frame of the default MTU.
	big := ConfigChunk{Name: strings.Repeat("n", MaxConfigName), Total: MaxConfigSize, Offset: MaxConfigSize - 800, Data: make([]byte, 800)}
	if b, err := appendRecords(nil, []Record{{Type: RecordConfig, Config: &big}}); err != nil || len(b)+Overhead > 1200 {
		t.Errorf("a chunk of 800 bytes with the longest name: %d bytes, %v", len(b), err)
	}
	for _, bad := range []ConfigChunk{{Name: "", Total: 1, Data: []byte("x")}, {Name: "a b", Total: 1, Data: []byte("x")},
		{Name: "a", Total: 1, Offset: 1, Data: []byte("x")},
		{Name: "a", Total: 2}, {Name: "a", Flags: 4, Total: 1, Data: []byte("x")}, {Name: "a", Total: 4000, Data: make([]byte, 3000)}} {
		if _, err := appendRecords(nil, []Record{{Type: RecordConfig, Config: &bad}}); err == nil {
			t.Errorf("CONFIG %+v encoded", bad)
		}
	}
}

func TestConfigDecodeErrors(t *testing.T) {
	hash := strings.Repeat("00", 32)
	for _, c := range []struct{ name, hex string }{
		{"body past the stream", "12 30 00 01 61"},
		{"name past the body", "12 03 00 05 61 62 63"},
		{"empty name", "12 23 00 00" + hash + "01 00"},
		{"name with a blank", "12 26 00 01 20" + hash + "01 00 78"},
		{"reserved flag", "12 26 04 01 61" + hash + "01 00 78"},
		{"total over 32 bits", "12 2a 00 01 61" + hash + "8080808010 00 78"},
		{"data past total", "12 27 00 01 61" + hash + "01 00 78 79"},
		{"offset past total", "12 26 00 01 61" + hash + "01 02 78"},
		{"no data", "12 25 00 01 61" + hash + "01 00"},
		{"ack short", "13 05 00 00 01 61 00"},
		{"body length over the limit", "12 ff ff 03"},
		{"ack empty name", "13 43 00 00 00" + hash + hash},
	} {
		b, err := hex.DecodeString(strings.ReplaceAll(c.hex, " ", ""))
		if err != nil {
			t.Fatal(c.name, err)
		}
		if _, err := decodeAll(b); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", c.name, err)
		}
	}
	// An answer with a later field after the local hash: skipped.
	b, _ := hex.DecodeString(strings.ReplaceAll("13 46 01 00 01 61"+hash+hash+"ffff 62", " ", ""))
	got, err := decodeAll(b)
	if err != nil || len(got) != 2 || got[0].Type != RecordConfigAck || got[0].ConfigAck.Name != "a" {
		t.Errorf("got %+v, %v", got, err)
	}
	// A decoded chunk's data is the caller's: it does not change with
	// the buffer.
	rec := mustAppend(t, []Record{{Type: RecordConfig, Config: &ConfigChunk{Name: "a", Total: 1, Data: []byte("x")}}})
	var keep []byte
	_ = DecodeRecords(rec, func(r *Record) error { keep = r.Config.Data; return nil })
	rec[len(rec)-1] = 'y'
	if !bytes.Equal(keep, []byte("x")) {
		t.Errorf("data %q changed with the buffer", keep)
	}
}
