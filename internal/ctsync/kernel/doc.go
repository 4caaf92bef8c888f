// Package kernel is carpd's connection-state sync glue to the Linux
// kernel's conntrack table over ctnetlink (NETLINK_NETFILTER,
// NFNL_SUBSYS_CTNETLINK): what the sync engine reads on the primary
// (a filtered dump and a reliable event stream) and what it writes on
// the backup (batched creates, updates and deletes). What ctnetlink allows,
// and why the code below does what it does, is in docs/sync-protocol.md,
// sections "Kernel source", "Kernel apply" and "What ctnetlink requires".
//
// # Reading
//
// [Conntrack.Dump] returns the table and [Conntrack.Events] streams NEW,
// UPDATE and DESTROY events, both passed through a [Filter] (by default:
// the flows this router forwards, given [Filter].Local, the router's
// current addresses). Dump converts and filters entries as the kernel
// sends them, so a large table never sits in memory twice.
//
// The event socket is opened in the kernel's "reliable" mode,
// NETLINK_BROADCAST_ERROR plus NETLINK_NO_ENOBUFS (docs/sync-protocol.md#what-ctnetlink-requires): the kernel
// then retries DESTROY events it could not deliver and lets missed
// NEW/UPDATE bits ride along with the next event of the same entry. Events
// can still be lost for good (the NEW of an entry that never changes
// again), so losses are detected and reported as a [flow.EventOverrun],
// upon which the consumer must dump again:
//
//   - the kernel could not queue an event on the socket: the socket's drop
//     counter (SO_MEMINFO, SK_MEMINFO_DROPS) went up, which is the only
//     sign of it once NETLINK_NO_ENOBUFS is set; or, where that option is
//     refused, recvmsg failed with ENOBUFS;
//   - the consumer is slow: the Events channel (Config.EventBuffer) stayed
//     full for [EventWait]; the reader then drops events rather than let
//     the socket overflow behind a blocked reader;
//   - an event could not be parsed, or the socket failed and was reopened.
//
// Losses are coalesced: from the first loss until the EventOverrun is on
// the channel, every event is dropped (the dump the consumer makes after
// reading the EventOverrun covers them), and the EventOverrun is handed
// over once the burst is over (no event for 20 ms, or 1 s at most). So a
// burst of any size costs the consumer one dump, and nothing older than the
// EventOverrun follows it.
//
// # Writing
//
// [Conntrack.Apply] upserts flows in batches (up to 256 IPCTNL_MSG_CT_NEW
// requests per sendmsg, each with NLM_F_ACK, its reply matched by sequence
// number) the way ctnetlink requires (docs/sync-protocol.md#what-ctnetlink-requires): IPS_CONFIRMED always set, NAT only through
// CTA_NAT_SRC/CTA_NAT_DST over the un-NATed reply tuple, TCP BE_LIBERAL in
// both directions. An entry that already exists with the same NAT is
// updated (timeout, TCP state, mark, status bits only ever set); an entry
// in the way, on the original or on the reply tuple (docs/sync-protocol.md#kernel-apply), is
// deleted and the flow created again, once. [Conntrack.Inject], what a sync
// receiver uses, deletes such an entry only if the caller injected it
// (came from the peer); an entry of the router's own stays, and the flow
// fails with flow.ErrLocalClash. [Conntrack.Admit] is the receiver's
// filter for the peer's flows (Filter.CheckReceived) and
// [Conntrack.MaxTimeout] the longest timeout the namespace's conntrack
// gives a flow (Timeouts). [Conntrack.Delete] removes entries by key.
//
// Replies are read one datagram at a time rather than with a generic
// netlink Receive (internal/nl's, mdlayher/netlink's before): ctnetlink
// answers a CT_GET with a single message flagged NLM_F_MULTI and no
// NLMSG_DONE, on which Receive blocks forever.
//
// # Files
//
// Everything that touches sockets is in _linux.go files; elsewhere [Open]
// fails with an error naming runtime.GOOS. The request builders
// (message.go), the message parser (convert_linux.go) and the [Filter] are
// pure and tested without sockets, the parser against events captured from
// a real kernel (testdata/events) and, by FuzzParseMessage, against
// ti-mo/conntrack's decoder, which the tests still import. The integration tests build a network namespace per
// test (package lab) and need root; lab.Require skips them otherwise.
package kernel
