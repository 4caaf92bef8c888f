package flow

import (
	"net/netip"
	"testing"
)

var (
	lan    = netip.MustParseAddr("192.168.1.10")
	server = netip.MustParseAddr("198.51.100.7")
	wan    = netip.MustParseAddr("203.0.113.1")
)

func TestNAT(t *testing.T) {
	orig := Tuple{Src: lan, Dst: server, Proto: ProtoTCP, SrcPort: 40000, DstPort: 443}
	plain := Flow{Orig: orig, Reply: orig.Inverse()}
	if _, _, ok := plain.SNAT(); ok {
		t.Error("plain flow has SNAT")
	}
	if _, _, ok := plain.DNAT(); ok {
		t.Error("plain flow has DNAT")
	}
	masq := Flow{Orig: orig, Reply: Tuple{Src: server, Dst: wan, Proto: ProtoTCP, SrcPort: 443, DstPort: 61000}}
	if a, p, ok := masq.SNAT(); !ok || a != wan || p != 61000 {
		t.Errorf("SNAT %v %d %v", a, p, ok)
	}
	if _, _, ok := masq.DNAT(); ok {
		t.Error("masquerade has DNAT")
	}
	dnat := Flow{Orig: Tuple{Src: server, Dst: wan, Proto: ProtoTCP, SrcPort: 5555, DstPort: 80},
		Reply: Tuple{Src: lan, Dst: server, Proto: ProtoTCP, SrcPort: 8080, DstPort: 5555}}
	if a, p, ok := dnat.DNAT(); !ok || a != lan || p != 8080 {
		t.Errorf("DNAT %v %d %v", a, p, ok)
	}
	if _, _, ok := dnat.SNAT(); ok {
		t.Error("port forward has SNAT")
	}
}

func TestICMP(t *testing.T) {
	echo := Tuple{Src: lan, Dst: server, Proto: ProtoICMP, SrcPort: 77, DstPort: 8 << 8}
	inv := echo.Inverse()
	if inv.Src != server || inv.Dst != lan || inv.SrcPort != 77 || inv.DstPort != 0 {
		t.Fatalf("inverse of echo: %+v", inv)
	}
	f := Flow{Orig: echo, Reply: inv}
	if _, _, ok := f.SNAT(); ok {
		t.Error("plain ICMP flow has SNAT")
	}
	if _, _, ok := f.DNAT(); ok {
		t.Error("plain ICMP flow has DNAT")
	}
	f.Reply.Dst, f.Reply.SrcPort = wan, 1234
	if a, id, ok := f.SNAT(); !ok || a != wan || id != 1234 {
		t.Errorf("masqueraded ping: %v %d %v", a, id, ok)
	}
	v6 := Tuple{Src: netip.MustParseAddr("fd00::10"), Dst: netip.MustParseAddr("2001:db8::1"), Proto: ProtoICMPv6, SrcPort: 5, DstPort: 128 << 8}
	if inv := v6.Inverse(); inv.DstPort != 129<<8 {
		t.Errorf("ICMPv6 echo reply type %d", inv.DstPort>>8)
	}
}

func TestValid(t *testing.T) {
	orig := Tuple{Src: lan, Dst: server, Proto: ProtoTCP, SrcPort: 1, DstPort: 2}
	good := Flow{Orig: orig, Reply: orig.Inverse(), TCPState: TCPEstablished}
	if err := good.Valid(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Flow){
		"mixed family":  func(f *Flow) { f.Reply.Dst = netip.MustParseAddr("fd00::1") },
		"multicast":     func(f *Flow) { f.Orig.Dst = netip.MustParseAddr("224.0.0.1") },
		"proto":         func(f *Flow) { f.Orig.Proto, f.Reply.Proto = 47, 47 },
		"proto differs": func(f *Flow) { f.Reply.Proto = ProtoUDP },
		"tcp state":     func(f *Flow) { f.TCPState = 42 },
		"icmp over v6": func(f *Flow) {
			a, b := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
			f.Orig = Tuple{Src: a, Dst: b, Proto: ProtoICMP}
			f.Reply = f.Orig.Inverse()
		},
	} {
		f := good
		mut(&f)
		if f.Valid() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
