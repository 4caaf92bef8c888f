package carp

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// frame is one captured Ethernet frame.
type frame struct {
	data []byte
}

// readPcap reads a classic little-endian microsecond pcap with Ethernet
// link type: just enough to replay the captures in testdata/.
func readPcap(t *testing.T, path string) []frame {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		t.Fatalf("%s: not a little-endian pcap", path)
	}
	if lt := binary.LittleEndian.Uint32(b[20:]); lt != 1 {
		t.Fatalf("%s: link type %d, want Ethernet", path, lt)
	}
	var out []frame
	for off := 24; off < len(b); {
		if off+16 > len(b) {
			t.Fatalf("%s: truncated record header at %d", path, off)
		}
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		off += 16
		if off+n > len(b) {
			t.Fatalf("%s: truncated record at %d", path, off)
		}
		out = append(out, frame{data: b[off : off+n]})
		off += n
	}
	return out
}

// carpPayload returns the CARP payload, IPv4 source and TTL of an Ethernet
// frame carrying IPv4 protocol 112, or ok=false.
func carpPayload(f frame) (payload []byte, src [4]byte, ttl uint8, ok bool) {
	d := f.data
	if len(d) < 14+20 || binary.BigEndian.Uint16(d[12:]) != 0x0800 {
		return nil, src, 0, false
	}
	ip := d[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[9] != IPProto || len(ip) < ihl {
		return nil, src, 0, false
	}
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if total > len(ip) {
		return nil, src, 0, false
	}
	copy(src[:], ip[12:16])
	return ip[ihl:total], src, ip[8], true
}

func captures(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob("testdata/*.pcap")
	if err != nil {
		t.Fatal(err)
	}
	// A glob that matches nothing must fail, not pass vacuously.
	if len(m) < 3 {
		t.Fatalf("want the 3 ucarp captures in testdata/, found %d", len(m))
	}
	return m
}

func ipString(a [4]byte) string { return fmt.Sprintf("%d.%d.%d.%d", a[0], a[1], a[2], a[3]) }
