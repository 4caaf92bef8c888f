package balance

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/carpd/carpd/internal/lab"
	"golang.org/x/sys/unix"
)

// loaded loads the program for mac and nodes into the running kernel (its
// verifier, its JIT) and returns it with its mask map.
func loaded(t *testing.T, mac net.HardwareAddr, nodes int) (prog, mapFD int) {
	t.Helper()
	lab.Require(t) // root: bpf(2) needs CAP_BPF and CAP_NET_ADMIN
	mapFD, err := newMaskMap()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(mapFD) })
	insns, err := Program(mac, nodes, mapFD)
	if err != nil {
		t.Fatal(err)
	}
	prog, err = loadProgram(insns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(prog) })
	return prog, mapFD
}

func verdict(t *testing.T, prog int, f []byte) int32 {
	t.Helper()
	ret, err := testRun(prog, f)
	if err != nil {
		t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
	}
	return ret
}

// TestProgramMatchesAccept runs the program in the kernel against the pure
// rule on random packets, node counts and masks.
func TestProgramMatchesAccept(t *testing.T) {
	mac := net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x01, 0x07}
	other := net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	r := rand.New(rand.NewPCG(1, 2))
	protos := []uint8{6, 17, protoICMP, protoICMPv6, protoCARP, 47}
	for _, n := range []int{1, 2, 3, 5, 7, 32} {
		prog, mapFD := loaded(t, mac, n)
		for i := 0; i < 2000; i++ {
			mask := r.Uint32()
			if r.IntN(4) == 0 {
				mask &= 1<<uint(r.IntN(32)) | 1<<uint(r.IntN(32))
			}
			if err := setMapMask(mapFD, mask); err != nil {
				t.Fatal(err)
			}
			src, dst := randomPair(r)
			proto := protos[r.IntN(len(protos))]
			drop := verdict(t, prog, frame(mac, src, dst, proto)) == tcActShot
			if want := !Accept(src, dst, proto, mask, n); drop != want {
				t.Fatalf("%s > %s proto %d, %d nodes, mask %#x: program drops %v, rule drops %v", src, dst, proto, n, mask, drop, want)
			}
			if got := verdict(t, prog, frame(other, src, dst, proto)); got != tcActUnspec {
				t.Fatalf("%s > %s: a frame to another MAC got verdict %d", src, dst, got)
			}
		}
	}
}

func randomPair(r *rand.Rand) (src, dst netip.Addr) {
	if r.IntN(2) == 0 {
		var s, d [4]byte
		binary.BigEndian.PutUint32(s[:], r.Uint32())
		binary.BigEndian.PutUint32(d[:], r.Uint32())
		if r.IntN(8) != 0 {
			d[0] &= 0x7f // mostly unicast
		}
		return netip.AddrFrom4(s), netip.AddrFrom4(d)
	}
	var s, d [16]byte
	for j := range s {
		s[j], d[j] = byte(r.Uint32()), byte(r.Uint32())
	}
	if r.IntN(8) != 0 {
		d[0] = 0x20
	}
	return netip.AddrFrom16(s), netip.AddrFrom16(d)
}

func TestProgramEdges(t *testing.T) {
	mac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x01}
	prog, _ := loaded(t, mac, 2) // the map starts at 0: owns nothing
	f := frame(mac, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 6)
	if got := verdict(t, prog, f); got != tcActShot {
		t.Fatalf("an unowned packet got verdict %d", got)
	}
	arp := append([]byte(nil), f...)
	arp[12], arp[13] = 0x08, 0x06
	if got := verdict(t, prog, arp); got != tcActUnspec {
		t.Fatalf("ARP got verdict %d", got)
	}
	for _, bad := range []struct {
		mac net.HardwareAddr
		n   int
	}{{mac[:5], 2}, {mac, 0}, {mac, 33}} {
		if _, err := Program(bad.mac, bad.n, 3); err == nil {
			t.Errorf("Program(%v, %d) accepted", bad.mac, bad.n)
		}
	}
}
