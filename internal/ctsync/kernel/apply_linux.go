package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

const (
	// maxBatch is the most requests sent in one sendmsg. The kernel
	// handles them one after the other inside the sendmsg call and queues
	// one reply each on our socket, so the receive buffer must hold a
	// batch's replies: see replyBudget.
	maxBatch = 256
	// maxBatchBytes bounds a batch's size below the default
	// net.core.wmem_default (212992): netlink refuses a sendmsg larger
	// than the socket's send buffer (EMSGSIZE).
	maxBatchBytes = 64 << 10
	// writerReadBuffer is the receive buffer asked for the writer socket.
	writerReadBuffer = 4 << 20
	// replyBudget is the receive buffer reserved per reply: an ack is a
	// small skb (truesize under 1 KiB), but the answer to a CT_GET is
	// allocated NLMSG_GOODSIZE, a page. If the buffer the kernel grants
	// (SO_RCVBUFFORCE needs CAP_NET_ADMIN, as writing conntrack does) is
	// smaller than maxBatch*replyBudget, batches shrink to fit.
	replyBudget = 8 << 10
	// writerBatch is how many reply datagrams one recvmmsg reads at
	// most, each into a slot of eventSlot bytes (the answer to a CT_GET
	// is a message of at most NLMSG_GOODSIZE, like an event).
	writerBatch = 16
	// replyTimeout bounds the wait for a batch's replies. They are queued
	// before sendmsg returns; the wait only ends a batch whose replies the
	// kernel dropped.
	replyTimeout = 5 * time.Second
	// maxJoinedErrors bounds the errors Delete joins.
	maxJoinedErrors = 8
	// nlmsgHeaderLen is sizeof(struct nlmsghdr).
	nlmsgHeaderLen = 16
)

// writer is the socket of Apply and Delete: requests go out in batches,
// and each request gets exactly one reply, matched by sequence number.
type writer struct {
	conn  *nl.Conn
	rc    syscall.RawConn
	recv  *batchReceiver
	out   []byte // one batch sent
	seq   uint32
	batch int // requests per sendmsg
}

// dialWriter opens a writer socket.
func dialWriter(cfg *nl.Config, log *logx.Logger) (*writer, error) {
	conn, err := nl.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, err
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	// Errors need not echo the whole request.
	if err := conn.SetOption(nl.CapAcknowledge, true); err != nil {
		log.Debug("NETLINK_CAP_ACK not available", "op", "open", "err", err)
	}
	setReadBuffer(conn, writerReadBuffer, log)
	w := &writer{conn: conn, rc: rc, recv: newBatchReceiver(rc, writerBatch, eventSlot), batch: maxBatch}
	if got, err := conn.ReadBuffer(); err == nil && got/replyBudget < w.batch {
		w.batch = max(got/replyBudget, 1)
		log.Warn("small netlink receive buffer, smaller batches", "op", "open", "buffer", got, "batch", w.batch)
	}
	return w, nil
}

// reply is the kernel's answer to one request.
type reply struct {
	msg nl.Message // an ack, or the entry a CT_GET asked for
	err error      // the kernel's errno (unix.Errno), or why there is no answer
	got bool
}

// exchange sends msgs in batches and fills out with one reply per
// message. It stops at the first batch that fails at the socket level (the
// socket then holds unknown replies and must be closed) or when ctx is
// done, and returns why; out holds the replies received so far.
func (w *writer) exchange(ctx context.Context, msgs []nl.Message, out []reply) error {
	for start := 0; start < len(msgs); {
		if err := ctx.Err(); err != nil {
			return err
		}
		end, size := start, 0
		for end < len(msgs) && end-start < w.batch {
			n := nlmsgHeaderLen + len(msgs[end].Data)
			if end > start && size+n > maxBatchBytes {
				break
			}
			size += n
			end++
		}
		if err := w.roundTrip(msgs[start:end], out[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// roundTrip sends one batch in one sendmsg and collects its replies.
func (w *writer) roundTrip(msgs []nl.Message, out []reply) error {
	index := make(map[uint32]int, len(msgs))
	w.out = w.out[:0]
	for i := range msgs {
		w.seq++
		if w.seq == 0 {
			w.seq = 1
		}
		index[w.seq] = i
		w.out = appendMessage(w.out, msgs[i], w.seq)
	}
	if err := sendDatagram(w.rc, w.out); err != nil {
		return err
	}
	if err := w.conn.SetReadDeadline(time.Now().Add(replyTimeout)); err != nil {
		return err
	}
	for left := len(msgs); left > 0; {
		n, err := w.recv.next()
		if err != nil {
			return err
		}
		for d := range n {
			b, err := w.recv.datagram(d)
			if err != nil {
				return err
			}
			for len(b) >= nl.HeaderLen {
				var m nl.Message
				if m, b, err = nl.Next(b); err != nil {
					return errShortDatagram
				}
				i, ok := index[m.Header.Sequence]
				if !ok || out[i].got {
					continue
				}
				r := reply{got: true}
				if m.Header.Type == nl.Error {
					errno, err := ackErrno(m)
					switch {
					case err != nil:
						r.err = err
					case errno != 0:
						r.err = errno
					}
				} else {
					// An entry; copy it out of the reused buffer.
					r.msg = nl.Message{Header: m.Header, Data: bytes.Clone(m.Data)}
				}
				out[i] = r
				left--
			}
		}
	}
	return w.conn.SetReadDeadline(time.Time{})
}

// exchange runs msgs through the writer socket, opening it if need be,
// and returns one reply per message; a message that got none carries the
// reason in its err. A socket that failed is closed, and the next call
// opens a new one. The caller holds wmu.
func (c *Conntrack) exchange(ctx context.Context, msgs []nl.Message) []reply {
	out := make([]reply, len(msgs))
	if len(msgs) == 0 {
		return out
	}
	fill := func(err error) []reply {
		for i := range out {
			if !out[i].got {
				out[i].err = err
			}
		}
		return out
	}
	if c.isClosed() {
		return fill(ErrClosed)
	}
	if c.w == nil {
		var w *writer
		err := c.dial(func(cfg *nl.Config) (err error) {
			w, err = dialWriter(cfg, c.log)
			return err
		})
		if err != nil {
			return fill(fmt.Errorf("kernel: open conntrack socket: %w", err))
		}
		c.w = w
		c.addOwnPID(w.conn.PID())
	}
	err := c.w.exchange(ctx, msgs, out)
	if err == nil {
		return out
	}
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		c.log.Warn("conntrack socket failed, reopening", "op", "write", "err", err)
		c.w.conn.Close()
		c.w = nil
		err = fmt.Errorf("kernel: %w: %w", errNoReply, err)
	}
	return fill(err)
}

// Apply creates or updates flows in the kernel table, in batches, and
// returns one error per flow (nil: done). Following docs/sync-protocol.md#kernel-apply:
//
//  1. Every flow is created (IPCTNL_MSG_CT_NEW, NLM_F_CREATE|NLM_F_EXCL)
//     with IPS_CONFIRMED plus its SEEN_REPLY and ASSURED bits, its NAT as
//     CTA_NAT_SRC/CTA_NAT_DST over the un-NATed reply tuple, TCP
//     BE_LIBERAL both ways, zone, mark and timeout.
//  2. A create that fails with EEXIST clashes with an entry on the original
//     or on the (NATed) reply tuple; both are looked up.
//  3. An entry with our original tuple and our reply tuple is ours, with
//     the same NAT: it is updated (timeout, TCP protoinfo, mark, status
//     bits only ever set; never NAT, which the kernel cannot change).
//     Anything else in the way, a stale entry from an earlier failover, a
//     tcp_loose pick-up, a different flow holding our NAT mapping, is
//     deleted (by its original tuple and its CTA_ID, so a newer entry is
//     left alone),
//  4. and the flow created again, once.
//
// Apply owns the whole table: it replaces whatever is in the way. A sync
// receiver uses Inject, which replaces only what it injected itself.
//
// Flows that fail flow.Flow.Valid or have a zero Timeout are not sent.
// Errors from the kernel wrap its errno (errors.Is(err, unix.EEXIST)).
// When ctx is done, the flows not yet sent fail with ctx.Err().
func (c *Conntrack) Apply(ctx context.Context, flows []flow.Flow) []error {
	return c.Inject(ctx, flows, nil)
}

// Inject is Apply for flows of the peer: an entry in the way (step 3) is
// deleted only if injected reports that it came from the peer (the caller
// knows what it injected: its original tuple, zone and reply tuple). If
// any entry in a flow's way did not, nothing is deleted and the flow fails
// with flow.ErrLocalClash: a connection of this router, or one it
// forwards, is never broken for the peer's. A nil injected replaces
// everything, as Apply.
func (c *Conntrack) Inject(ctx context.Context, flows []flow.Flow, injected func(*flow.Flow) bool) []error {
	errs := make([]error, len(flows))
	if len(flows) == 0 {
		return errs
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()

	creates := c.create(ctx, flows, allIndexes(len(flows)), errs)
	if len(creates) == 0 {
		return errs
	}
	again := c.resolve(ctx, flows, creates, errs, injected)
	if retry := c.create(ctx, flows, again, errs); len(retry) > 0 {
		for _, i := range retry {
			errs[i] = flowError("create", &flows[i], unix.EEXIST)
		}
	}
	return errs
}

// allIndexes returns 0..n-1.
func allIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// create sends the creates of flows[which], sets errs for those that
// failed and returns those that failed with EEXIST.
func (c *Conntrack) create(ctx context.Context, flows []flow.Flow, which []int, errs []error) (clashed []int) {
	msgs := make([]nl.Message, 0, len(which))
	sent := make([]int, 0, len(which))
	for _, i := range which {
		m, err := createMessage(&flows[i])
		if err != nil {
			errs[i] = flowError("create", &flows[i], err)
			continue
		}
		msgs = append(msgs, m)
		sent = append(sent, i)
	}
	for k, r := range c.exchange(ctx, msgs) {
		i := sent[k]
		switch {
		case r.err == nil:
			errs[i] = nil
		case errnoOf(r.err) == unix.EEXIST:
			clashed = append(clashed, i)
		default:
			errs[i] = flowError("create", &flows[i], r.err)
		}
	}
	return clashed
}

// entry is an entry found in the table, with its CTA_ID.
type entry struct {
	flow.Flow
	id uint32
}

// resolve looks up what the creates of flows[clashed] ran into, updates
// the entries that are the same flow, deletes the others if injected (nil:
// any) says they may go, and returns the flows to create again.
func (c *Conntrack) resolve(ctx context.Context, flows []flow.Flow, clashed []int, errs []error, injected func(*flow.Flow) bool) (again []int) {
	gets := make([]nl.Message, 0, 2*len(clashed))
	looked := make([]int, 0, len(clashed))
	for _, i := range clashed {
		f := &flows[i]
		byOrig, err1 := getMessage(lookup{Tuple: f.Orig, Zone: f.Zone})
		byReply, err2 := getMessage(lookup{Tuple: f.Reply, Reply: true, Zone: f.Zone})
		if err := errors.Join(err1, err2); err != nil {
			errs[i] = flowError("look up", f, err)
			continue
		}
		gets = append(gets, byOrig, byReply)
		looked = append(looked, i)
	}
	found := c.exchange(ctx, gets)

	// fixes are updates (flow index) and deletes (-1).
	var fixes []nl.Message
	var fixFlow []int
	for k, i := range looked {
		f := &flows[i]
		o, err1 := foundEntry(found[2*k])
		r, err2 := foundEntry(found[2*k+1])
		if err := errors.Join(err1, err2); err != nil {
			errs[i] = flowError("look up", f, err)
			continue
		}
		if o != nil && o.Reply == f.Reply {
			m, err := updateMessage(f, o.Status)
			if err != nil {
				errs[i] = flowError("update", f, err)
				continue
			}
			fixes = append(fixes, m)
			fixFlow = append(fixFlow, i)
			continue
		}
		inWay := make([]*entry, 0, 2)
		for _, e := range []*entry{o, r} {
			if e != nil && !(e == r && o != nil && r.id == o.id) {
				inWay = append(inWay, e)
			}
		}
		local := false
		for _, e := range inWay {
			if injected != nil && !injected(&e.Flow) {
				local = true
				c.log.Debug("conntrack entry in the way is not the peer's; left alone", "op", "apply", "flow", f.Orig, "entry", e.Orig, "entry_reply", e.Reply)
			}
		}
		if local {
			errs[i] = flowError("create", f, flow.ErrLocalClash)
			continue
		}
		for _, e := range inWay {
			c.log.Debug("deleting conntrack entry in the way", "op", "apply", "flow", f.Orig, "entry", e.Orig, "entry_reply", e.Reply)
			m, err := deleteMessage(lookup{Tuple: e.Orig, Zone: e.Zone, ID: e.id})
			if err != nil {
				continue // an entry the kernel gave us always has a tuple
			}
			fixes = append(fixes, m)
			fixFlow = append(fixFlow, -1)
		}
		again = append(again, i)
	}

	for k, r := range c.exchange(ctx, fixes) {
		i := fixFlow[k]
		switch {
		case i < 0:
			// A failed delete shows as EEXIST when the flow is
			// created again.
			if r.err != nil && errnoOf(r.err) != unix.ENOENT {
				c.log.Debug("cannot delete conntrack entry in the way", "op", "apply", "err", r.err)
			}
		case r.err == nil:
			errs[i] = nil
		case errnoOf(r.err) == unix.ENOENT:
			again = append(again, i) // gone since the lookup
		default:
			errs[i] = flowError("update", &flows[i], r.err)
		}
	}
	return again
}

// foundEntry returns the entry a CT_GET answered with, nil if there is
// none.
func foundEntry(r reply) (*entry, error) {
	if r.err != nil {
		if errnoOf(r.err) == unix.ENOENT {
			return nil, nil
		}
		return nil, r.err
	}
	_, f, id, err := parseMessage(r.msg)
	if err != nil {
		return nil, err
	}
	return &entry{Flow: f, id: id}, nil
}

// flowError wraps err with what failed and for which flow.
func flowError(op string, f *flow.Flow, err error) error {
	return fmt.Errorf("kernel: %s %v zone %d: %w", op, f.Orig, f.Zone, err)
}

// Delete removes the entries with the given keys (original tuple and
// zone), in batches. A missing entry is not an error; the others are
// joined (the first few, and a count).
func (c *Conntrack) Delete(ctx context.Context, keys []flow.Key) error {
	if len(keys) == 0 {
		return nil
	}
	var errs []error
	msgs := make([]nl.Message, 0, len(keys))
	sent := make([]int, 0, len(keys))
	for i, k := range keys {
		m, err := deleteMessage(lookup{Tuple: k.Orig, Zone: k.Zone})
		if err != nil {
			errs = append(errs, fmt.Errorf("kernel: delete %v zone %d: %w", k.Orig, k.Zone, err))
			continue
		}
		msgs = append(msgs, m)
		sent = append(sent, i)
	}
	c.wmu.Lock()
	replies := c.exchange(ctx, msgs)
	c.wmu.Unlock()
	for k, r := range replies {
		if r.err != nil && errnoOf(r.err) != unix.ENOENT {
			key := keys[sent[k]]
			errs = append(errs, fmt.Errorf("kernel: delete %v zone %d: %w", key.Orig, key.Zone, r.err))
		}
	}
	if n := len(errs); n > maxJoinedErrors {
		errs = append(errs[:maxJoinedErrors], fmt.Errorf("kernel: and %d more delete errors", n-maxJoinedErrors))
	}
	return errors.Join(errs...)
}
