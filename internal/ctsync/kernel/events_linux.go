package kernel

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// include/uapi/linux/netfilter/nfnetlink.h:
//
//	enum nfnetlink_groups {
//		NFNLGRP_NONE,
//		NFNLGRP_CONNTRACK_NEW,
//		NFNLGRP_CONNTRACK_UPDATE,
//		NFNLGRP_CONNTRACK_DESTROY,
//		...
//	};
const (
	nfnlgrpConntrackNew     = 1
	nfnlgrpConntrackUpdate  = 2
	nfnlgrpConntrackDestroy = 3
)

const (
	// eventBatch is how many event datagrams one recvmmsg reads at most,
	// each into a slot of eventSlot bytes: an event is one message of
	// at most NLMSG_GOODSIZE (a page up to 8 KiB, less the skb's
	// overhead).
	eventBatch = 16
	eventSlot  = 8 << 10
	// overrunRetry is how often the reader retries handing over an owed
	// EventOverrun while no event arrives.
	overrunRetry = 20 * time.Millisecond
	// overrunHold is the longest an owed EventOverrun waits for the end
	// of a burst of losses.
	overrunHold = time.Second
	// reopenBackoff bounds how fast a failing event socket is reopened.
	reopenBackoff = time.Second
)

// counters backs Stats; the reader goroutine writes, Stats reads.
type counters struct {
	events, filtered, dropped, kernelDrops, overruns, errors atomic.Uint64
}

func (c *counters) stats() Stats {
	return Stats{
		Events:      c.events.Load(),
		Filtered:    c.filtered.Load(),
		Dropped:     c.dropped.Load(),
		KernelDrops: c.kernelDrops.Load(),
		Overruns:    c.overruns.Load(),
		Errors:      c.errors.Load(),
	}
}

// pump turns event messages into flow.Events on a bounded channel. It is
// driven by one goroutine (the reader) and holds no socket, so tests feed
// it messages built in memory.
//
// Backpressure: deliver waits at most wait for room on out; then the event
// is dropped and an EventOverrun is owed (lose). While one is owed every
// event is dropped, since the dump the consumer makes after reading the
// EventOverrun covers them all. The reader hands the EventOverrun over
// (flush) once there is room and the burst is over (see readEvents), so the
// consumer sees each episode of losses as one EventOverrun, followed by
// nothing older than it.
type pump struct {
	out    chan flow.Event
	filter *Filter
	// own reports whether a port id is one of our writing sockets; nil
	// keeps the events of our own writes.
	own  func(pid uint32) bool
	wait time.Duration
	done <-chan struct{}
	log  *logx.Logger
	n    *counters

	pending bool      // an EventOverrun is owed
	since   time.Time // when it became owed
}

// handle parses, filters and delivers one event message.
func (p *pump) handle(m nl.Message) {
	if p.pending {
		// It would be dropped: spare the parsing.
		p.n.dropped.Add(1)
		return
	}
	if p.own != nil && m.Header.PID != 0 && p.own(m.Header.PID) {
		p.n.filtered.Add(1)
		return
	}
	typ, f, _, err := parseMessage(m)
	if err != nil {
		p.n.errors.Add(1)
		p.lose("unparsable event", err)
		return
	}
	ev := flow.Event{Type: typ, Flow: f}
	if !p.filter.matchEvent(&ev) {
		p.n.filtered.Add(1)
		return
	}
	p.deliver(ev)
}

// deliver puts ev on the channel, or drops it and owes an EventOverrun.
func (p *pump) deliver(ev flow.Event) {
	if p.pending {
		p.n.dropped.Add(1)
		return
	}
	select {
	case p.out <- ev:
		p.n.events.Add(1)
		return
	default:
	}
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.out <- ev:
		p.n.events.Add(1)
	case <-t.C:
		p.n.dropped.Add(1)
		p.lose("consumer too slow", nil)
	case <-p.done:
	}
}

// lose records that events were lost: an EventOverrun is owed. It logs
// once per episode.
func (p *pump) lose(why string, err error) {
	if p.pending {
		return
	}
	p.pending = true
	p.since = time.Now()
	p.log.Warn("conntrack events lost, resync owed", "op", "event", "reason", why, "buffer", cap(p.out), "err", err)
}

// flush hands over an owed EventOverrun if there is room, without
// waiting. It reports whether none is owed any more.
func (p *pump) flush() bool {
	if !p.pending {
		return true
	}
	select {
	case p.out <- flow.Event{Type: flow.EventOverrun}:
		p.pending = false
		p.n.overruns.Add(1)
		return true
	default:
		return false
	}
}

// dialEvents opens the event socket: subscribed to the NEW, UPDATE and
// DESTROY groups, in reliable mode (NETLINK_BROADCAST_ERROR and
// NETLINK_NO_ENOBUFS, docs/sync-protocol.md#kernel-source) with a large receive buffer.
func dialEvents(cfg *nl.Config, bufSize int, log *logx.Logger) (*nl.Conn, error) {
	conn, err := nl.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, err
	}
	for _, g := range []uint32{nfnlgrpConntrackNew, nfnlgrpConntrackUpdate, nfnlgrpConntrackDestroy} {
		if err := conn.JoinGroup(g); err != nil {
			conn.Close()
			return nil, err
		}
	}
	// Without BROADCAST_ERROR the kernel never learns that delivery
	// failed and does not retry; without NO_ENOBUFS the socket reports
	// ENOBUFS, which the reader also handles, so a kernel refusing it is
	// only logged.
	if err := conn.SetOption(nl.BroadcastError, true); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.SetOption(nl.NoENOBUFS, true); err != nil {
		log.Warn("NETLINK_NO_ENOBUFS not available, events are not reliable", "op", "open", "err", err)
	}
	setReadBuffer(conn, bufSize, log)
	return conn, nil
}

// setReadBuffer asks for a receive buffer of n bytes: SO_RCVBUFFORCE
// (CAP_NET_ADMIN) goes past net.core.rmem_max, SO_RCVBUF does not.
func setReadBuffer(conn *nl.Conn, n int, log *logx.Logger) {
	rc, err := conn.SyscallConn()
	if err == nil {
		var serr error
		if err = rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		}); err == nil {
			err = serr
		}
	}
	if err != nil {
		if err := conn.SetReadBuffer(n); err != nil {
			log.Warn("cannot set the socket receive buffer", "op", "open", "want", n, "err", err)
		}
	}
	if got, err := conn.ReadBuffer(); err == nil {
		log.Debug("netlink socket receive buffer", "op", "open", "want", n, "got", got)
	}
}

// sockDrops returns the socket's drop counter (SO_MEMINFO,
// SK_MEMINFO_DROPS: sk_drops, which netlink_overrun increments for every
// event the kernel could not queue, whether or not NETLINK_NO_ENOBUFS
// hides the ENOBUFS). ok is false where the kernel does not report it.
func sockDrops(rc syscall.RawConn) (drops uint32, ok bool) {
	var info [unix.SK_MEMINFO_VARS]uint32
	rc.Control(func(fd uintptr) {
		l := uint32(unsafe.Sizeof(info))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&l)), 0)
		ok = e == 0 && l >= (unix.SK_MEMINFO_DROPS+1)*4
	})
	return info[unix.SK_MEMINFO_DROPS], ok
}

// readEvents reads the event socket until it fails or Close; it returns
// nil after Close.
//
// An owed EventOverrun is handed over at a quiet point: when no event has
// come for overrunRetry (the burst that overran us is over), or
// overrunHold after the loss at the latest. A consumer that resyncs on
// each EventOverrun then dumps once per burst instead of once per drop.
func (c *Conntrack) readEvents(conn *nl.Conn) error {
	p := c.pump
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	recv := newBatchReceiver(rc, eventBatch, eventSlot)
	lastDrops, meminfoOK := sockDrops(rc)
	if !meminfoOK {
		c.log.Warn("socket drop counter (SO_MEMINFO) not available, relying on ENOBUFS", "op", "event")
	}
	quiet := false // no event came for overrunRetry
	armed := false // a read deadline is set
	for {
		if p.pending && (quiet || time.Since(p.since) >= overrunHold) {
			p.flush()
		}
		// While an EventOverrun is owed, wake up regularly to hand it
		// over even if no event comes.
		if p.pending {
			conn.SetReadDeadline(time.Now().Add(overrunRetry))
			armed = true
		} else if armed {
			conn.SetReadDeadline(time.Time{})
			armed = false
		}

		n, err := recv.next()
		if c.isClosed() {
			return nil
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			quiet = true
			continue
		case errors.Is(err, unix.ENOBUFS):
			c.n.kernelDrops.Add(1)
			p.lose("socket overrun (ENOBUFS)", nil)
			quiet = false
			continue
		default:
			return err
		}
		quiet = false
		if meminfoOK {
			if drops, ok := sockDrops(rc); ok && drops != lastDrops {
				c.n.kernelDrops.Add(uint64(drops - lastDrops))
				lastDrops = drops
				p.lose("socket overrun", nil)
			}
		}
		for i := range n {
			b, err := recv.datagram(i)
			if err != nil {
				c.n.errors.Add(1)
				p.lose("event truncated", err)
				continue
			}
			// A datagram may hold several messages: walk them in
			// place.
			if err := eachMessage(b, p.handle); err != nil {
				c.n.errors.Add(1)
				p.lose("unparsable event", err)
			}
		}
	}
}

// eventLoop runs the reader, reopening the event socket (and owing an
// EventOverrun) when it fails, until Close. It closes the Events channel
// on its way out: it is the only sender.
func (c *Conntrack) eventLoop(conn *nl.Conn) {
	defer c.wg.Done()
	defer close(c.events)
	for {
		err := c.readEvents(conn)
		conn.Close()
		if err == nil || c.isClosed() {
			return
		}
		c.n.errors.Add(1)
		c.log.Error("conntrack event socket failed, reopening", "op", "event", "err", err)
		for {
			select {
			case <-c.done:
				return
			case <-time.After(reopenBackoff):
			}
			err = c.dial(func(cfg *nl.Config) (err error) {
				conn, err = dialEvents(cfg, c.sockBuf, c.log)
				return err
			})
			if err == nil {
				break
			}
			if errors.Is(err, ErrClosed) {
				return
			}
			c.log.Error("cannot reopen the conntrack event socket", "op", "event", "err", err)
		}
		if !c.setEventConn(conn) {
			conn.Close()
			return
		}
		c.pump.lose("event socket reopened", err) // what happened meanwhile is lost
	}
}
