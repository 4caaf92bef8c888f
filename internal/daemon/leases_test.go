package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/internal/leases"
)

func dLease(ip string, exp uint32, mac byte) leases.Lease {
	return leases.Lease{Expiry: exp, Addr: netip.MustParseAddr(ip), HWType: 1, HW: string([]byte{2, 0, 0, 0, 0, mac}), Host: "h"}
}

func readSet(t *testing.T, path string) leases.Set {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, bad := leases.Parse(b)
	if bad != 0 {
		t.Fatalf("%d bad lines in %q", bad, b)
	}
	return leases.SetOf(f.Leases)
}

// TestLeaseWorker: the local file goes to the engine; the peer's events
// are merged and written (same mode) while not master, held while
// master and written once backup; refused ones are counted and never
// written.
func TestLeaseWorker(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	path := filepath.Join(t.TempDir(), "dhcp.leases")
	own := dLease("192.168.1.50", 1_800_003_600, 1)
	if err := os.WriteFile(path, (&leases.File{Leases: []leases.Lease{own}}).Append(nil), 0o640); err != nil {
		t.Fatal(err)
	}
	// The engine: only its identity matters to step.
	v := leaseView{on: true, file: path, engine: new(ctsync.Engine), nets: []netip.Prefix{netip.MustParsePrefix("192.168.1.1/24")}}
	var w leaseWorker
	if set := w.step(v, nil, now); len(set) != 1 || set[own.Addr] != own {
		t.Fatalf("engine got %v", set)
	}
	peer := dLease("192.168.1.60", 1_800_003_600, 2)
	evs := []leases.Event{
		{Op: leases.Add, Lease: peer},
		{Op: leases.Add, Lease: dLease("10.0.0.5", 1_800_003_600, 3)},       // outside the networks
		{Op: leases.Add, Lease: dLease("192.168.1.61", 4_000_000_000, 4)},   // absurd expiry
		{Op: leases.Renew, Lease: dLease("192.168.1.50", 1_800_000_100, 9)}, // older: ours stays
	}
	// Master: nothing written.
	v.master = true
	if set := w.step(v, evs, now); set != nil {
		t.Errorf("set again without a change: %v", set)
	}
	if got := readSet(t, path); len(got) != 1 {
		t.Fatalf("written while master: %v", got)
	}
	// Backup: the merge goes to the file, mode kept.
	v.master = false
	w.step(v, nil, now)
	got := readSet(t, path)
	if len(got) != 2 || got[own.Addr] != own || got[peer.Addr] != peer {
		t.Fatalf("file after the merge: %v", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	st := w.status(nil)
	if st.Written != 1 || st.Refused["address"] != 1 || st.Refused["expiry"] != 1 ||
		st.Local != 2 || st.Peer != 2 || st.LastWrite != now {
		t.Errorf("status %+v", st)
	}
	// Reading back its own write sends nothing the peer does not have
	// (the engine diffs; here: the set is the merged one).
	w.step(v, nil, now)
	if st := w.status(nil); st.Written != 1 {
		t.Errorf("written again without a change: %+v", st)
	}
	// A release removes.
	w.step(v, []leases.Event{{Op: leases.Release, Lease: peer}}, now)
	if got := readSet(t, path); len(got) != 1 || got[own.Addr] != own {
		t.Fatalf("file after the release: %v", got)
	}
	// dnsmasq rewrites the file: read again and sent.
	own2 := dLease("192.168.1.70", 1_800_003_600, 7)
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(path, (&leases.File{Leases: []leases.Lease{own, own2}}).Append(nil), 0o640); err != nil {
		t.Fatal(err)
	}
	if set := w.step(v, nil, now); len(set) != 2 {
		t.Fatalf("the rewrite did not reach the engine: %v", set)
	}
}

// TestLeaseWorkerPeerCap: the peer's set is held to leases.MaxPeerLeases;
// a new address beyond it is refused and counted (too_many), while the
// peer's known leases still renew and release.
func TestLeaseWorkerPeerCap(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	path := filepath.Join(t.TempDir(), "dhcp.leases")
	v := leaseView{on: true, file: path, engine: new(ctsync.Engine), nets: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")}}
	var w leaseWorker
	w.step(v, nil, now)
	addr := func(i int) string { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String() }
	evs := make([]leases.Event, 0, leases.MaxPeerLeases+2)
	for i := range leases.MaxPeerLeases + 2 {
		evs = append(evs, leases.Event{Op: leases.Add, Lease: dLease(addr(i+1), 1_800_003_600, byte(i))})
	}
	w.step(v, evs, now)
	st := w.status(nil)
	if st.Peer != leases.MaxPeerLeases || st.Refused["too_many"] != 2 {
		t.Fatalf("peer %d (want %d), refused %v (want too_many 2)", st.Peer, leases.MaxPeerLeases, st.Refused)
	}
	if got := readSet(t, path); len(got) != leases.MaxPeerLeases {
		t.Fatalf("%d leases written, want %d", len(got), leases.MaxPeerLeases)
	}
	// Known addresses: a renewal is taken, a release makes room.
	first := dLease(addr(1), 1_800_007_200, 0)
	w.step(v, []leases.Event{{Op: leases.Renew, Lease: first}, {Op: leases.Release, Lease: dLease(addr(2), 1_800_003_600, 1)},
		{Op: leases.Add, Lease: dLease(addr(leases.MaxPeerLeases+5), 1_800_003_600, 9)}}, now)
	if st := w.status(nil); st.Peer != leases.MaxPeerLeases || st.Refused["too_many"] != 2 || w.peer[first.Addr] != first {
		t.Errorf("after a renewal, a release and a new one: peer %d, refused %v", st.Peer, st.Refused)
	}
}

// TestLeaseWorkerKeepsOtherLines: a line of the local file that carpd
// cannot read (a newer dnsmasq's format, a hand edit) survives the
// rewrite that merges the peer's leases.
func TestLeaseWorkerKeepsOtherLines(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	path := filepath.Join(t.TempDir(), "dhcp.leases")
	own := dLease("192.168.1.50", 1_800_003_600, 1)
	odd := "1800003600 52:54:00:00:00:09 192.168.1.99 name_with_a space 01:02"
	content := string((&leases.File{Leases: []leases.Lease{own}}).Append(nil)) + odd + "\nduid 00:01:00:01\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	v := leaseView{on: true, file: path, engine: new(ctsync.Engine), nets: []netip.Prefix{netip.MustParsePrefix("192.168.1.1/24")}}
	var w leaseWorker
	w.step(v, nil, now)
	peer := dLease("192.168.1.60", 1_800_003_600, 2)
	w.step(v, []leases.Event{{Op: leases.Add, Lease: peer}}, now)
	b, _ := os.ReadFile(path)
	f, bad := leases.Parse(b)
	if len(f.Leases) != 2 || bad != 1 || len(f.Other) != 1 || f.Other[0] != odd || f.Tail != "duid 00:01:00:01\n" {
		t.Fatalf("after the merge the file is:\n%s", b)
	}
}
