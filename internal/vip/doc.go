// Package vip acts on CARP decisions on Linux: it adds and removes the
// virtual addresses of a vhid and announces them after a takeover. Package
// carp decides; vip acts (docs/carp-protocol.md#takeover-actions;
// docs/architecture.md#house-rules, rule 4).
//
// Linux implements the consumer's seam, carp.Announcer (Add, Remove,
// Announce), for one interface; New returns it, Close retires it. LinkUp
// reports a link's state; Watch starts the daemon's one watcher of links and
// addresses: link changes, so that a link going down can demote the vhid,
// and every interface's current addresses (Watcher.Addrs, Watcher.IsLocal)
// for CARP's sockets and the sync filter.
//
// # Placement (ucarp style)
//
// The addresses live on the interface's own MAC address, as with ucarp or
// keepalived without use_vmac: the MASTER adds them with rtnetlink and the
// BACKUP removes them. Because the MAC moves with the address, clients must
// be told on takeover, hence the announcements.
//
// # Standards
//
//   - RFC 826, ARP; RFC 5227, Section 2.3, ARP Announcement (the gratuitous
//     request); RFC 5944, Section 4.6, gratuitous ARP reply.
//   - RFC 4861, Sections 4.4, 4.6.1 and 7.2.6: the unsolicited Neighbor
//     Advertisement, with Override set; RFC 4443, Section 2.3 and RFC 8200,
//     Section 8.1 for its checksum; RFC 2464, Section 7 for its multicast
//     MAC.
//
// # Linux behaviour relied upon
//
//   - Addresses are added with RTM_NEWADDR and NLM_F_CREATE|NLM_F_REPLACE
//     (idempotent), IPv6 with IFA_F_NODAD so they are never tentative.
//   - A Linux neighbour that already has an entry for the address replaces
//     its MAC on a gratuitous ARP request (arp_process and arp_is_garp in
//     net/ipv4/arp.c) and on an NA with Override (ndisc_recv_na in
//     net/ipv6/ndisc.c); it does not create entries from them unless
//     arp_accept / accept_untracked_na are set.
//   - Announcements use AF_PACKET (internal/rawsock), so they do
//     not depend on the address's DAD state or on socket options.
//
// # Privileges and namespaces
//
// Add and Remove need CAP_NET_ADMIN, Announce needs CAP_NET_RAW; Has, LinkUp
// and Watch need none. Every call acts in the network namespace of the
// calling thread. The integration tests create their own namespaces; they
// skip without root unless CARPD_REQUIRE_NETNS=1, which makes them fail.
package vip
