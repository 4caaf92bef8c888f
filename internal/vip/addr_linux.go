package vip

import (
	"net/netip"
	"sync/atomic"

	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// addrTable keeps the addresses of every interface, from the kernel's
// address messages (RTM_NEWADDR, RTM_DELADDR and dumps), and publishes them
// as an immutable snapshot that readers load without a lock. It is owned by
// the watcher's goroutine; only snap is shared.
type addrTable struct {
	byIndex map[int][]ifAddr // in the kernel's order: the primary first
	snap    atomic.Pointer[addrSnapshot]
}

// ifAddr is one address of an interface and its IPv4 broadcast address.
type ifAddr struct {
	addr, bcast netip.Addr
}

// addrSnapshot is what readers see.
type addrSnapshot struct {
	byName map[string][]netip.Addr // the addresses of each named link
	local  map[netip.Addr]struct{} // every address and broadcast address
}

func newAddrTable() *addrTable {
	t := &addrTable{byIndex: make(map[int][]ifAddr)}
	t.snap.Store(&addrSnapshot{})
	return t
}

// parseAddr returns the address an address message is about: IFA_LOCAL
// where there is one (IPv4; IFA_ADDRESS is then the peer on a point-to-point
// link), else IFA_ADDRESS.
func parseAddr(am *ifAddrMsg) (ifAddr, bool) {
	a := am.Local
	if !a.IsValid() {
		a = am.Address
	}
	if !a.IsValid() {
		return ifAddr{}, false
	}
	return ifAddr{addr: a.Unmap(), bcast: am.Broadcast.Unmap()}, true
}

// apply applies one RTM_NEWADDR or RTM_DELADDR; it reports whether the
// table changed.
func (t *addrTable) apply(typ uint16, am *ifAddrMsg) bool {
	a, ok := parseAddr(am)
	if !ok {
		return false
	}
	idx := int(am.Index)
	list := t.byIndex[idx]
	at := -1
	for i, x := range list {
		if x.addr == a.addr {
			at = i
			break
		}
	}
	switch typ {
	case unix.RTM_NEWADDR:
		if at >= 0 {
			if list[at] == a {
				return false
			}
			list[at] = a
			return true
		}
		t.byIndex[idx] = append(list, a)
		return true
	case unix.RTM_DELADDR:
		if at < 0 {
			return false
		}
		list = append(list[:at:at], list[at+1:]...)
		if len(list) == 0 {
			delete(t.byIndex, idx)
		} else {
			t.byIndex[idx] = list
		}
		return true
	}
	return false
}

// resync replaces the table with a full dump.
func (t *addrTable) resync(msgs []ifAddrMsg) {
	clear(t.byIndex)
	for i := range msgs {
		t.apply(unix.RTM_NEWADDR, &msgs[i])
	}
}

// dropLink forgets the addresses of a link that is gone.
func (t *addrTable) dropLink(idx int) { delete(t.byIndex, idx) }

// publish makes the table, with the link names of links, what readers see.
func (t *addrTable) publish(links map[int]linkState) {
	s := &addrSnapshot{byName: make(map[string][]netip.Addr, len(t.byIndex)), local: make(map[netip.Addr]struct{})}
	for idx, list := range t.byIndex {
		addrs := make([]netip.Addr, len(list))
		for i, a := range list {
			addrs[i] = a.addr
			s.local[a.addr] = struct{}{}
			if a.bcast.IsValid() {
				s.local[a.bcast] = struct{}{}
			}
		}
		if l, ok := links[idx]; ok {
			s.byName[l.name] = addrs
		}
	}
	t.snap.Store(s)
}

// addrs returns the addresses of the named interface, the primary first.
// The slice is shared: callers must not change it.
func (t *addrTable) addrs(ifname string) []netip.Addr {
	return t.snap.Load().byName[ifname]
}

// isLocal reports whether a is an address of any interface, or the IPv4
// broadcast address of one of their subnets.
func (t *addrTable) isLocal(a netip.Addr) bool {
	_, ok := t.snap.Load().local[a.Unmap().WithZone("")]
	return ok
}

// listAddrMsgs dumps the addresses of every interface (RTM_GETADDR,
// AF_UNSPEC: both families).
func listAddrMsgs(c *nl.Conn) ([]ifAddrMsg, error) {
	bodies, err := execute(c, unix.RTM_GETADDR, nl.Request|nl.Dump, &ifAddrMsg{}, unix.RTM_NEWADDR)
	if err != nil {
		return nil, err
	}
	msgs := make([]ifAddrMsg, len(bodies))
	for i, b := range bodies {
		if err := msgs[i].UnmarshalBinary(b); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}
