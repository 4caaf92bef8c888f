package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTsharkDecodesCarp: an independent decoder, Wireshark's CARP dissector,
// reads carpd's IPv4 and IPv6 adverts off the wire as valid CARP
// (docs/carp-protocol.md#encapsulation, #header): version 2, type
// advertisement, the right vhid, a good checksum, the virtual MAC as Ethernet
// source and TTL / hop limit 255. Wireshark decodes protocol 112 as VRRP
// unless told to try the heuristic dissectors, which is where CARP lives,
// first (-o ip.try_heuristic_first:TRUE, IPv4 only) or to decode 112 as CARP.
func TestTsharkDecodesCarp(t *testing.T) {
	tshark := requireTool(t, "tshark")
	c := newCluster(t, 2)
	r1, r2 := c.routers[0], c.routers[1]
	const vhid = 42
	v := vhidConf{iface: "lan", vhid: vhid, advbase: 1, password: "wire", addrs: []string{vip4, "fd00:1::1/64"}}
	c.start(r1, confText(false, v))
	c.waitState(r1, "lan", vhid, "MASTER", 6*time.Second)
	v.advskew = 100
	c.start(r2, confText(false, v))
	c.waitHearing(r2, "lan", vhid, 3*time.Second)

	// tshark keeps its profile under $HOME; give it a private one.
	home := t.TempDir()
	env := []string{"env", "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
	pcap := filepath.Join(t.TempDir(), "carp.pcapng")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	capture := append(env, tshark, "-n", "-i", "lan", "-a", "duration:4",
		"-f", "ip proto 112 or ip6 proto 112", "-w", pcap)
	if out, err := c.client.Run(ctx, capture...); err != nil {
		t.Fatalf("capture: %v\n%s", err, out)
	}

	fields := []string{"frame.protocols", "carp.version", "carp.type", "carp.vhid", "carp.checksum.status",
		"eth.src", "eth.dst", "ip.ttl", "ipv6.hlim", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
		"carp.authlen", "carp.adver_int", "carp.advskew", "carp.demotion"}
	// The CARP heuristic sits in the IPv4 dissector's heuristic list
	// only (`tshark -G heuristic-decodes`: "ip carp"), so IPv6 adverts are
	// decoded with Decode As instead, which runs the same dissector and
	// checksum check; its heuristic test (version, type, authlen 7) is
	// checked below.
	decode := func(filter string, opts ...string) string {
		args := append(append([]string{}, env...), tshark, "-n", "-r", pcap, "-Y", filter)
		args = append(args, opts...)
		args = append(args, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f")
		for _, f := range fields {
			args = append(args, "-e", f)
		}
		out, err := c.client.Run(ctx, args...)
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, out)
		}
		return out
	}
	out := decode("ip", "-o", "ip.try_heuristic_first:TRUE") + decode("ipv6", "-d", "ip.proto==112,carp")

	wantMAC := fmt.Sprintf("00:00:5e:00:01:%02x", vhid)
	var n4, n6 int
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != len(fields) {
			t.Fatalf("tshark line with %d fields, want %d: %q", len(cols), len(fields), line)
		}
		p := map[string]string{}
		for i, f := range fields {
			p[f] = cols[i]
		}
		want := map[string]string{
			"carp.version": "2", "carp.type": "1", "carp.vhid": fmt.Sprint(vhid),
			"carp.checksum.status": "1", // PROTO_CHECKSUM_E_GOOD
			"eth.src":              wantMAC,
			"carp.authlen":         "7", "carp.adver_int": "1", "carp.advskew": "0", "carp.demotion": "0",
		}
		switch {
		case strings.HasSuffix(p["frame.protocols"], ":ip:carp"):
			n4++
			want["ip.ttl"], want["ip.src"], want["ip.dst"], want["eth.dst"] = "255", "10.0.1.2", "224.0.0.18", "01:00:5e:00:00:12"
		case strings.HasSuffix(p["frame.protocols"], ":ipv6:carp"):
			n6++
			want["ipv6.hlim"], want["ipv6.dst"], want["eth.dst"] = "255", "ff02::12", "33:33:00:00:00:12"
			if !strings.HasPrefix(p["ipv6.src"], "fe80::") {
				t.Errorf("IPv6 advert from %s, want r1's link-local address: %q", p["ipv6.src"], line)
			}
		default:
			t.Errorf("not decoded as CARP (protocols %q): %q", p["frame.protocols"], line)
			continue
		}
		for f, w := range want {
			if p[f] != w {
				t.Errorf("%s = %q, want %q: %q", f, p[f], w, line)
			}
		}
	}
	t.Logf("tshark decoded %d IPv4 and %d IPv6 CARP adverts", n4, n6)
	if n4 < 2 || n6 < 2 {
		t.Fatalf("captured %d IPv4 and %d IPv6 adverts in 4 s, want at least 2 of each:\n%s", n4, n6, out)
	}
}
