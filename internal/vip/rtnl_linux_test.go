package vip

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

// TestRequestsMatchRTNetlink: the requests we send are the bytes the
// rtnetlink library sent for the same messages before we dropped it.
func TestRequestsMatchRTNetlink(t *testing.T) {
	for _, s := range []string{"192.0.2.10/24", "192.0.2.10/31", "2001:db8::10/64"} {
		p := netip.MustParsePrefix(s)
		ours, err := addressMessage(7, p).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		ip := net.IP(p.Addr().AsSlice())
		ref := &rtnetlink.AddressMessage{
			Family: unix.AF_INET, PrefixLength: uint8(p.Bits()), Scope: unix.RT_SCOPE_UNIVERSE, Index: 7,
			Attributes: &rtnetlink.AddressAttributes{Address: ip, Local: ip},
		}
		if p.Addr().Is6() {
			ref.Family, ref.Flags, ref.Attributes.Flags = unix.AF_INET6, unix.IFA_F_NODAD, unix.IFA_F_NODAD
		} else if p.Bits() < 31 {
			ref.Attributes.Broadcast = net.IP(broadcast(p).AsSlice())
		}
		want, err := ref.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, want) {
			t.Errorf("%s: RTM_NEWADDR body\n got %x\nwant %x", s, ours, want)
		}
	}
	for _, tc := range []struct {
		ours *ifInfoMsg
		ref  *rtnetlink.LinkMessage
	}{
		{&ifInfoMsg{}, &rtnetlink.LinkMessage{}}, // the dump request
		{&ifInfoMsg{Name: "br-lan"}, &rtnetlink.LinkMessage{Attributes: &rtnetlink.LinkAttributes{Name: "br-lan"}}},
	} {
		ours, err := tc.ours.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want, err := tc.ref.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, want) {
			t.Errorf("%+v: RTM_GETLINK body\n got %x\nwant %x", tc.ours, ours, want)
		}
	}
	ours, _ := (&ifAddrMsg{Family: unix.AF_INET6}).MarshalBinary()
	want, _ := (&rtnetlink.AddressMessage{Family: unix.AF_INET6}).MarshalBinary()
	if !bytes.Equal(ours, want) {
		t.Errorf("RTM_GETADDR dump body\n got %x\nwant %x", ours, want)
	}
}

// TestDecodeRTNetlink decodes messages marshalled by the rtnetlink library,
// which is how the kernel lays them out.
func TestDecodeRTNetlink(t *testing.T) {
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	b, err := (&rtnetlink.LinkMessage{
		Type: unix.ARPHRD_ETHER, Index: 3, Flags: flagsUp, Change: 1,
		Attributes: &rtnetlink.LinkAttributes{
			Name: "eth1", MTU: 1500, Address: hw, Broadcast: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			OperationalState: rtnetlink.OperStateUp, Type: 9, QueueDisc: "fq_codel",
		},
	}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var lm ifInfoMsg
	if err := lm.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	wantLink := ifInfoMsg{Type: unix.ARPHRD_ETHER, Index: 3, Flags: flagsUp, Change: 1, Name: "eth1", MTU: 1500, Address: hw, OperState: ifOperUp}
	if diff := cmp.Diff(wantLink, lm); diff != "" {
		t.Errorf("link (-want +got):\n%s", diff)
	}

	b, err = (&rtnetlink.AddressMessage{
		Family: unix.AF_INET, PrefixLength: 24, Flags: 0x80, Scope: unix.RT_SCOPE_UNIVERSE, Index: 3,
		Attributes: &rtnetlink.AddressAttributes{
			Address: net.IPv4(192, 0, 2, 99), Local: net.IPv4(192, 0, 2, 1), Broadcast: net.IPv4(192, 0, 2, 255),
			Label: "eth1", Flags: 0x280,
		},
	}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var am ifAddrMsg
	if err := am.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	wantAddr := ifAddrMsg{
		Family: unix.AF_INET, PrefixLen: 24, Flags: 0x80, Scope: unix.RT_SCOPE_UNIVERSE, Index: 3,
		Address: netip.MustParseAddr("192.0.2.99"), Local: netip.MustParseAddr("192.0.2.1"),
		Broadcast: netip.MustParseAddr("192.0.2.255"), AttrFlags: 0x280,
	}
	if diff := cmp.Diff(wantAddr, am, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("address (-want +got):\n%s", diff)
	}
}

func TestDecodeErrors(t *testing.T) {
	if err := new(ifInfoMsg).UnmarshalBinary(make([]byte, ifinfomsgLen-1)); err != errShortIfInfoMsg {
		t.Errorf("short ifinfomsg: %v", err)
	}
	if err := new(ifAddrMsg).UnmarshalBinary(make([]byte, ifaddrmsgLen-1)); err != errShortIfAddrMsg {
		t.Errorf("short ifaddrmsg: %v", err)
	}
	// IFA_ADDRESS of 5 bytes.
	b := append(make([]byte, ifaddrmsgLen), 9, 0, unix.IFA_ADDRESS, 0, 1, 2, 3, 4, 5, 0, 0, 0)
	if err := new(ifAddrMsg).UnmarshalBinary(b); err == nil {
		t.Error("5-byte address accepted")
	}
	// An attribute longer than the message.
	b = append(make([]byte, ifinfomsgLen), 64, 0, unix.IFLA_IFNAME, 0)
	if err := new(ifInfoMsg).UnmarshalBinary(b); err == nil {
		t.Error("truncated attribute accepted")
	}
}

// FuzzIfInfoMsg: decoding never panics, and what decodes re-encodes to
// something that decodes to the same message.
func FuzzIfInfoMsg(f *testing.F) {
	seed, _ := (&ifInfoMsg{Index: 2, Flags: flagsUp, Name: "eth0", MTU: 1500, Address: net.HardwareAddr{2, 0, 0, 0, 0, 1}, OperState: ifOperUp}).MarshalBinary()
	f.Add(seed)
	f.Add(make([]byte, ifinfomsgLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m ifInfoMsg
		if m.UnmarshalBinary(b) != nil {
			return
		}
		m.Family = 0 // not encoded by rtnetlink either; always AF_UNSPEC from the kernel
		enc, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var m2 ifInfoMsg
		if err := m2.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, m2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzIfAddrMsg: as FuzzIfInfoMsg, for messages with IFA_ADDRESS (without
// it, MarshalBinary writes a dump request).
func FuzzIfAddrMsg(f *testing.F) {
	seed, _ := addressMessage(7, netip.MustParsePrefix("192.0.2.10/24")).MarshalBinary()
	f.Add(seed)
	seed, _ = addressMessage(7, netip.MustParsePrefix("2001:db8::10/64")).MarshalBinary()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m ifAddrMsg
		if m.UnmarshalBinary(b) != nil || !m.Address.IsValid() {
			return
		}
		enc, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var m2 ifAddrMsg
		if err := m2.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		if m != m2 {
			t.Fatalf("round trip: %+v != %+v", m, m2)
		}
	})
}
