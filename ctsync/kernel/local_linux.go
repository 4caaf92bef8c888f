package kernel

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// include/uapi/linux/rtnetlink.h:
//
//	enum rtnetlink_groups {
//		...
//		RTNLGRP_IPV4_IFADDR,	/* 5 */
//		...
//		RTNLGRP_IPV6_IFADDR,	/* 9 */
//		...
//	};
const (
	rtnlgrpIPv4IfAddr = 5
	rtnlgrpIPv6IfAddr = 9
)

// addrWatcher keeps an AddrSet equal to the addresses of a network
// namespace: it lists them (RTM_GETADDR) at start and again after every
// address notification, so a CARP virtual address counts as local from the
// moment it is added.
type addrWatcher struct {
	set   *AddrSet
	log   *slog.Logger
	query *netlink.Conn // RTM_GETADDR dumps; used by run only, after start
	watch *netlink.Conn // subscribed to the address groups

	closeOnce sync.Once
}

// watchAddrs opens the sockets and loads the current addresses.
func watchAddrs(cfg *netlink.Config, log *slog.Logger) (*addrWatcher, error) {
	w := &addrWatcher{set: NewAddrSet(), log: log}
	var err error
	if w.watch, err = netlink.Dial(unix.NETLINK_ROUTE, cfg); err != nil {
		return nil, err
	}
	if w.query, err = netlink.Dial(unix.NETLINK_ROUTE, cfg); err != nil {
		w.watch.Close()
		return nil, err
	}
	for _, g := range []uint32{rtnlgrpIPv4IfAddr, rtnlgrpIPv6IfAddr} {
		if err = w.watch.JoinGroup(g); err != nil {
			w.close()
			return nil, err
		}
	}
	if err = w.load(); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// load lists the namespace's addresses into the set.
func (w *addrWatcher) load() error {
	addrs, err := listAddrs(w.query)
	if err != nil {
		return err
	}
	w.set.Store(addrs)
	w.log.Debug("local addresses", "op", "addrs", "addrs", addrs)
	return nil
}

// run reloads the set after every notification until close.
func (w *addrWatcher) run(wg *sync.WaitGroup, done <-chan struct{}) {
	defer wg.Done()
	for {
		_, err := w.watch.Receive()
		select {
		case <-done:
			return
		default:
		}
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			// The last set stays in force.
			w.log.Error("address watch failed, local addresses no longer updated", "op", "addrs", "err", err)
			return
		}
		if err := w.load(); err != nil {
			select {
			case <-done:
				return
			default:
			}
			w.log.Error("cannot list local addresses", "op", "addrs", "err", err)
		}
	}
}

// close closes both sockets, which stops run.
func (w *addrWatcher) close() {
	w.closeOnce.Do(func() {
		w.watch.Close()
		w.query.Close()
	})
}

// include/uapi/linux/if_addr.h:
//
//	struct ifaddrmsg {
//		__u8		ifa_family;
//		__u8		ifa_prefixlen;	/* The prefix length		*/
//		__u8		ifa_flags;	/* Flags			*/
//		__u8		ifa_scope;	/* Address scope		*/
//		__u32		ifa_index;	/* Link index			*/
//	};
//
//	enum {
//		IFA_UNSPEC,
//		IFA_ADDRESS,
//		IFA_LOCAL,
//		IFA_LABEL,
//		IFA_BROADCAST,
//		...
//	};
//
// IFA_LOCAL is the local address where there is one (IPv4); IFA_ADDRESS
// is the local address otherwise (IPv6) and the peer on point-to-point
// IPv4 links, so it counts only without IFA_LOCAL.
const (
	ifaddrmsgLen = 8
	ifaAddress   = 1
	ifaLocal     = 2
	ifaBroadcast = 4
)

// listAddrs dumps the addresses of every interface, with their IPv4
// broadcast addresses (traffic to those is the router's too).
func listAddrs(conn *netlink.Conn) ([]netip.Addr, error) {
	msgs, err := conn.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETADDR, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, ifaddrmsgLen), // AF_UNSPEC: both families
	})
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []netip.Addr
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < ifaddrmsgLen {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[ifaddrmsgLen:])
		if err != nil {
			return nil, fmt.Errorf("list addresses: %w", err)
		}
		var local, address netip.Addr
		for ad.Next() {
			a, ok := netip.AddrFromSlice(ad.Bytes())
			if !ok {
				continue
			}
			switch ad.Type() {
			case ifaLocal:
				local = a
			case ifaAddress:
				address = a
			case ifaBroadcast:
				out = append(out, a)
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("list addresses: %w", err)
		}
		if local.IsValid() {
			out = append(out, local)
		} else if address.IsValid() {
			out = append(out, address)
		}
	}
	return out, nil
}
