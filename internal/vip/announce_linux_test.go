package vip

// Unit tests of the Linux glue that need no privileges: the rtnetlink
// messages we build (decoded with the library's own unmarshaller,
// docs/architecture.md#house-rules, rule 7) and Announce with its sockets
// replaced by a recorder.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/rawsock"
	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

func TestAddressMessage(t *testing.T) {
	tests := []struct {
		prefix    string
		family    uint8
		flags     uint32
		broadcast string // "" for none
	}{
		{"192.0.2.10/24", unix.AF_INET, 0, "192.0.2.255"},
		{"10.1.2.3/20", unix.AF_INET, 0, "10.1.15.255"},
		{"10.0.0.1/8", unix.AF_INET, 0, "10.255.255.255"},
		{"192.0.2.10/30", unix.AF_INET, 0, "192.0.2.11"},
		{"192.0.2.10/31", unix.AF_INET, 0, ""},
		{"192.0.2.10/32", unix.AF_INET, 0, ""},
		{"2001:db8::10/64", unix.AF_INET6, unix.IFA_F_NODAD, ""},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.prefix)
			b, err := addressMessage(7, p).MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var m rtnetlink.AddressMessage
			if err := m.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if m.Family != tt.family || int(m.PrefixLength) != p.Bits() || m.Index != 7 ||
				m.Scope != unix.RT_SCOPE_UNIVERSE || uint32(m.Flags) != tt.flags {
				t.Errorf("header = %+v", m)
			}
			a := m.Attributes
			if a == nil {
				t.Fatal("no attributes")
			}
			ip := net.IP(p.Addr().AsSlice())
			if !a.Address.Equal(ip) || !a.Local.Equal(ip) {
				t.Errorf("IFA_ADDRESS %v, IFA_LOCAL %v, want %v", a.Address, a.Local, ip)
			}
			if a.Flags != tt.flags {
				t.Errorf("IFA_FLAGS = %#x, want %#x", a.Flags, tt.flags)
			}
			var bc string
			if a.Broadcast != nil {
				bc = a.Broadcast.String()
			}
			if bc != tt.broadcast {
				t.Errorf("IFA_BROADCAST = %q, want %q", bc, tt.broadcast)
			}
		})
	}
}

// recorder is a net.PacketConn that records what is written to it.
type recorder struct {
	protocol int
	mu       sync.Mutex
	frames   [][]byte
	dsts     []net.Addr
	failAt   int // fail the write with this index (1-based); 0 never
	closed   bool
}

var _ net.PacketConn = &recorder{}

func (r *recorder) WriteTo(b []byte, addr net.Addr) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failAt == len(r.frames)+1 {
		return 0, unix.ENETDOWN
	}
	r.frames = append(r.frames, append([]byte(nil), b...))
	r.dsts = append(r.dsts, addr)
	return len(b), nil
}
func (r *recorder) ReadFrom([]byte) (int, net.Addr, error) {
	return 0, nil, errors.New("not implemented")
}
func (r *recorder) Close() error                     { r.closed = true; return nil }
func (r *recorder) LocalAddr() net.Addr              { return &rawsock.Addr{} }
func (r *recorder) SetDeadline(time.Time) error      { return nil }
func (r *recorder) SetReadDeadline(time.Time) error  { return nil }
func (r *recorder) SetWriteDeadline(time.Time) error { return nil }

// fakeLinux returns a Linux whose kernel access is replaced: the interface
// is testMAC on index 3, sockets are recorders, forwarding is as given.
func fakeLinux(t *testing.T, forwarding bool) (*Linux, *[]*recorder) {
	t.Helper()
	l, err := New("eth9", nil)
	if err != nil {
		t.Fatal(err)
	}
	var socks []*recorder
	l.link = func(context.Context) (*net.Interface, error) {
		return &net.Interface{Index: 3, Name: "eth9", HardwareAddr: testMAC}, nil
	}
	l.listen = func(ifi *net.Interface, protocol int) (net.PacketConn, error) {
		if ifi.Index != 3 {
			t.Errorf("listen on index %d", ifi.Index)
		}
		r := &recorder{protocol: protocol}
		socks = append(socks, r)
		return r, nil
	}
	l.forwarding = func() bool { return forwarding }
	return l, &socks
}

func TestAnnounceFrames(t *testing.T) {
	l, socks := fakeLinux(t, true)
	v4b := netip.MustParseAddr("192.0.2.11")
	err := l.Announce(context.Background(), []netip.Addr{testV4, testV6, v4b})
	if err != nil {
		t.Fatal(err)
	}
	if len(*socks) != 2 {
		t.Fatalf("opened %d sockets, want 2 (ARP, IPv6)", len(*socks))
	}
	arpSock, ndSock := (*socks)[0], (*socks)[1]
	if arpSock.protocol != unix.ETH_P_ARP || ndSock.protocol != unix.ETH_P_IPV6 {
		t.Errorf("protocols %#x, %#x", arpSock.protocol, ndSock.protocol)
	}
	for _, s := range *socks {
		if !s.closed {
			t.Error("socket left open")
		}
	}

	// ARP: request then reply, per address, in order.
	var want []arpPacket
	for _, a := range []netip.Addr{testV4, v4b} {
		ps := gratuitousARP(testMAC, a)
		want = append(want, ps[:]...)
	}
	var got []arpPacket
	for i, f := range arpSock.frames {
		h, payload, err := parseEthernet(f)
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(h, ethernetHeader{Destination: ethBroadcast, Source: testMAC, EtherType: etherTypeARP}) {
			t.Errorf("frame %d header %+v", i, h)
		}
		if d := arpSock.dsts[i].(*rawsock.Addr).HardwareAddr; !cmp.Equal(d, ethBroadcast) {
			t.Errorf("frame %d sent to %v", i, d)
		}
		var p arpPacket
		if err := p.UnmarshalBinary(payload); err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if diff := cmp.Diff(want, got, addrComparer); diff != "" {
		t.Errorf("ARP (-want +got):\n%s", diff)
	}

	// NA: Router set because forwarding is on.
	if len(ndSock.frames) != 1 {
		t.Fatalf("%d NA frames", len(ndSock.frames))
	}
	_, payload, _ := parseEthernet(ndSock.frames[0])
	var na neighborAdvert
	if err := na.UnmarshalBinary(payload); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(unsolicitedNA(testMAC, testV6, true), na, addrComparer); diff != "" {
		t.Errorf("NA (-want +got):\n%s", diff)
	}
}

func TestAnnounceErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("bad addresses are reported, good ones still sent", func(t *testing.T) {
		l, socks := fakeLinux(t, false)
		err := l.Announce(ctx, []netip.Addr{{}, netip.MustParseAddr("224.0.0.18"), testV6})
		if !errors.Is(err, errInvalidAddr) {
			t.Errorf("err = %v", err)
		}
		if len(*socks) != 1 || len((*socks)[0].frames) != 1 {
			t.Errorf("NA not sent")
		}
	})

	t.Run("write error stops that family only", func(t *testing.T) {
		l, socks := fakeLinux(t, false)
		listen := l.listen
		l.listen = func(ifi *net.Interface, protocol int) (net.PacketConn, error) {
			pc, err := listen(ifi, protocol)
			if protocol == unix.ETH_P_ARP {
				pc.(*recorder).failAt = 2
			}
			return pc, err
		}
		err := l.Announce(ctx, []netip.Addr{testV4, testV6})
		if !errors.Is(err, unix.ENETDOWN) {
			t.Errorf("err = %v", err)
		}
		if n := len((*socks)[0].frames); n != 1 {
			t.Errorf("%d ARP frames sent before the error, want 1", n)
		}
		if n := len((*socks)[1].frames); n != 1 {
			t.Errorf("%d NA frames, want 1", n)
		}
	})

	t.Run("no Ethernet address", func(t *testing.T) {
		l, _ := fakeLinux(t, false)
		l.link = func(context.Context) (*net.Interface, error) { return &net.Interface{Index: 3}, nil }
		if err := l.Announce(ctx, []netip.Addr{testV4}); !errors.Is(err, errNotEthernet) {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		l, socks := fakeLinux(t, false)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := l.Announce(cctx, []netip.Addr{testV4}); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
		if len(*socks) != 0 {
			t.Error("opened a socket after cancellation")
		}
	})

	t.Run("closed", func(t *testing.T) {
		l, _ := fakeLinux(t, false)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{
			"announce": l.Announce(ctx, []netip.Addr{testV4}),
			"add":      l.Add(ctx, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24")}),
			"remove":   l.Remove(ctx, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24")}),
		} {
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s after Close = %v", name, err)
			}
		}
		if _, err := l.Has(ctx, netip.MustParsePrefix("192.0.2.10/24")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("has after Close = %v", err)
		}
	})

	t.Run("nothing to do", func(t *testing.T) {
		l, socks := fakeLinux(t, false)
		if err := l.Announce(ctx, nil); err != nil {
			t.Error(err)
		}
		if err := l.Add(ctx, nil); err != nil {
			t.Error(err)
		}
		if len(*socks) != 0 {
			t.Error("opened a socket for nothing")
		}
	})
}

func TestNewRejectsBadName(t *testing.T) {
	if _, err := New("no/such", nil); !errors.Is(err, errInvalidInterfaceName) {
		t.Errorf("New = %v", err)
	}
	if _, err := LinkUp(""); !errors.Is(err, errInvalidInterfaceName) {
		t.Errorf("LinkUp = %v", err)
	}
}

// TestMissingInterface runs against the real kernel but needs no privilege:
// looking up a link that does not exist is allowed to anyone.
func TestMissingInterface(t *testing.T) {
	ctx := context.Background()
	const name = "carpdnone0"
	l, err := New(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24")}
	if err := l.Remove(ctx, p); err != nil {
		t.Errorf("Remove on a missing interface = %v, want nil", err)
	}
	if err := l.Add(ctx, p); !errors.Is(err, ErrNoInterface) {
		t.Errorf("Add = %v, want ErrNoInterface", err)
	}
	if _, err := l.Has(ctx, p[0]); !errors.Is(err, ErrNoInterface) {
		t.Errorf("Has = %v, want ErrNoInterface", err)
	}
	if err := l.Announce(ctx, []netip.Addr{testV4}); !errors.Is(err, ErrNoInterface) {
		t.Errorf("Announce = %v, want ErrNoInterface", err)
	}
	if _, err := LinkUp(name); !errors.Is(err, ErrNoInterface) {
		t.Errorf("LinkUp = %v, want ErrNoInterface", err)
	}
}

// TestAnnounceAsClusterMAC: a balanced cluster's announcements carry the
// cluster MAC as the ARP sender (and target) hardware address and as the
// NA's target link-layer address, while every Ethernet source stays the
// interface's own MAC (ip-stealth's MAC must never be a frame's source).
func TestAnnounceAsClusterMAC(t *testing.T) {
	l, socks := fakeLinux(t, false)
	cluster := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x01}
	if err := l.AnnounceAs(context.Background(), []netip.Addr{testV4, testV6}, cluster); err != nil {
		t.Fatal(err)
	}
	arpSock, ndSock := (*socks)[0], (*socks)[1]
	want := gratuitousARP(cluster, testV4)
	if len(arpSock.frames) != 2 || len(ndSock.frames) != 1 {
		t.Fatalf("%d ARP and %d NA frames", len(arpSock.frames), len(ndSock.frames))
	}
	for i, f := range arpSock.frames {
		h, payload, err := parseEthernet(f)
		if err != nil {
			t.Fatal(err)
		}
		var p arpPacket
		if err := p.UnmarshalBinary(payload); err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(h.Source, testMAC) {
			t.Errorf("ARP frame %d from %v, want the interface's %v", i, h.Source, testMAC)
		}
		if diff := cmp.Diff(want[i], p, addrComparer); diff != "" {
			t.Errorf("ARP %d (-want +got):\n%s", i, diff)
		}
	}
	h, payload, _ := parseEthernet(ndSock.frames[0])
	var na neighborAdvert
	if err := na.UnmarshalBinary(payload); err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(h.Source, testMAC) {
		t.Errorf("NA from %v, want the interface's %v", h.Source, testMAC)
	}
	if diff := cmp.Diff(unsolicitedNA(cluster, testV6, false), na, addrComparer); diff != "" {
		t.Errorf("NA (-want +got):\n%s", diff)
	}
}
