package kernel

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// dumpMessageBuffer holds one dump datagram: the kernel fills skbs of up to
// 32 KiB for a reader offering that much (netlink_dump).
const dumpMessageBuffer = 64 << 10

// Conntrack is the kernel's conntrack table of one network namespace, as
// the sync engine reads and writes it (ctsync.Kernel). It holds the event socket, read by one goroutine; the
// writer socket of Apply and Delete, opened on first use. Dump opens a socket of its own per call.
// All methods are safe for concurrent use; Apply and Delete run one at a
// time.
type Conntrack struct {
	log     *logx.Logger
	sockBuf int
	filter  Filter
	// timeouts: the namespace's conntrack timeouts, read at Open.
	timeouts Timeouts
	events   chan flow.Event
	pump     *pump
	n        counters
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup

	nsMu     sync.RWMutex // held for reading while a socket is opened
	nsFD     int          // our duplicate of Config.NetNS; 0 for none
	nsClosed bool         // nsFD is closed: no more sockets

	mu      sync.Mutex // guards the fields below
	closed  bool
	evConn  *nl.Conn // the reader's socket, closed by Close to stop it
	ownPIDs []uint32 // port ids of every writer socket we had

	wmu sync.Mutex // serializes Apply and Delete; guards w
	w   *writer    // nil until first used and after a failure
}

// Open opens conntrack in the namespace cfg.NetNS and starts reading its
// events. Close releases it.
func Open(cfg Config) (*Conntrack, error) {
	c := &Conntrack{
		log:     cfg.Log,
		sockBuf: cfg.SocketBuffer,
		filter:  cfg.Filter,
		done:    make(chan struct{}),
	}
	if c.log == nil {
		c.log = logx.New(logx.DiscardHandler)
	}
	if c.sockBuf <= 0 {
		c.sockBuf = DefaultSocketBuffer
	}
	n := cfg.EventBuffer
	if n <= 0 {
		n = DefaultEventBuffer
	}
	if cfg.NetNS != 0 {
		fd, err := unix.FcntlInt(uintptr(cfg.NetNS), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("kernel: dup netns fd: %w", err)
		}
		c.nsFD = fd
	}
	fail := func(err error) (*Conntrack, error) {
		c.closeNS()
		return nil, err
	}

	c.timeouts = ReadTimeouts(c.nsFD)
	var evConn *nl.Conn
	err := c.dial(func(cfg *nl.Config) (err error) {
		evConn, err = dialEvents(cfg, c.sockBuf, c.log)
		return err
	})
	if err != nil {
		return fail(fmt.Errorf("kernel: open conntrack event socket: %w", err))
	}
	c.evConn = evConn

	c.events = make(chan flow.Event, n)
	c.pump = &pump{
		out:    c.events,
		filter: &c.filter,
		wait:   EventWait,
		done:   c.done,
		log:    c.log,
		n:      &c.n,
	}
	if cfg.SkipOwnWrites {
		c.pump.own = c.isOwnPID
	}
	c.wg.Add(1)
	go c.eventLoop(evConn)
	return c, nil
}

// Admit is the receiver's filter for a flow of the peer: the Filter as a
// sender applies it, and none of this router's own addresses but its VIPs
// (Filter.CheckReceived).
func (c *Conntrack) Admit(f *flow.Flow) flow.Refusal { return c.filter.CheckReceived(f) }

// MaxTimeout is the longest timeout this namespace's conntrack gives a
// flow like f (Timeouts.Max), as read at Open.
func (c *Conntrack) MaxTimeout(f *flow.Flow) uint32 { return c.timeouts.Max(f) }

// dial runs fn, which opens sockets, with the nl.Config that puts
// them in our namespace; after Close it fails with ErrClosed.
func (c *Conntrack) dial(fn func(cfg *nl.Config) error) error {
	c.nsMu.RLock()
	defer c.nsMu.RUnlock()
	if c.nsClosed {
		return ErrClosed
	}
	return fn(&nl.Config{NetNS: c.nsFD})
}

// Close stops the event reader, waits for it,
// closes every socket and then the Events channel. It is idempotent.
func (c *Conntrack) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	if c.evConn != nil {
		c.evConn.Close() // unblocks the reader
	}
	c.mu.Unlock()
	c.wg.Wait()

	c.wmu.Lock()
	if c.w != nil {
		c.w.conn.Close()
		c.w = nil
	}
	c.wmu.Unlock()
	c.closeNS()
	return nil
}

// closeNS closes our duplicate of the namespace descriptor, once no
// socket is being opened.
func (c *Conntrack) closeNS() {
	c.nsMu.Lock()
	defer c.nsMu.Unlock()
	if c.nsFD != 0 {
		unix.Close(c.nsFD)
		c.nsFD = 0
	}
	c.nsClosed = true
}

// isClosed reports whether Close has begun.
func (c *Conntrack) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// setEventConn installs a reopened event socket; false after Close.
func (c *Conntrack) setEventConn(conn *nl.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.evConn = conn
	return true
}

// isOwnPID reports whether pid is the port id of one of our writer
// sockets.
func (c *Conntrack) isOwnPID(pid uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.ownPIDs {
		if p == pid {
			return true
		}
	}
	return false
}

// addOwnPID remembers the port id of a new writer socket. Only a few are
// kept: a writer is only replaced after a failure.
func (c *Conntrack) addOwnPID(pid uint32) {
	const keep = 8
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ownPIDs = append(c.ownPIDs, pid)
	if len(c.ownPIDs) > keep {
		c.ownPIDs = c.ownPIDs[len(c.ownPIDs)-keep:]
	}
}

// Events returns the event stream (see ctsync.Kernel and the package doc). It is
// closed after Close.
func (c *Conntrack) Events() <-chan flow.Event { return c.events }

// Stats returns the event reader's counters.
func (c *Conntrack) Stats() Stats { return c.n.stats() }

// Dump returns every entry of the table (IPv4 and IPv6, all zones) that
// passes the Filter. See Each.
func (c *Conntrack) Dump(ctx context.Context) ([]flow.Flow, error) {
	var out []flow.Flow
	if err := c.Each(ctx, func(f *flow.Flow) { out = append(out, *f) }); err != nil {
		return nil, err
	}
	return out, nil
}

// Each calls fn with every entry of the table (IPv4 and IPv6, all zones)
// that passes the Filter, as the dump's datagrams arrive: nothing but one
// datagram is held in memory. It uses a socket of its own, closed when
// ctx is done. fn must not keep the pointer; on an error it may have seen
// part of the table.
func (c *Conntrack) Each(ctx context.Context, fn func(*flow.Flow)) error {
	if c.isClosed() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var conn *nl.Conn
	err := c.dial(func(cfg *nl.Config) (err error) {
		conn, err = nl.Dial(unix.NETLINK_NETFILTER, cfg)
		return err
	})
	if err != nil {
		return fmt.Errorf("kernel: dump: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err = c.dump(conn, fn)
	if stop() {
		conn.Close()
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if err != nil {
		return fmt.Errorf("kernel: dump: %w", err)
	}
	return nil
}

// dump runs a table dump on conn: datagrams of entries up to NLMSG_DONE.
func (c *Conntrack) dump(conn *nl.Conn, fn func(*flow.Flow)) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	const seq = 1
	if err := sendDatagram(rc, appendMessage(nil, dumpMessage(), seq)); err != nil {
		return err
	}
	buf := make([]byte, dumpMessageBuffer)
	interrupted := false
	var bad int // entries that did not parse
	var badErr error
	for {
		b, err := conn.ReadDatagram(buf)
		if err != nil {
			return err
		}
		for len(b) >= nl.HeaderLen {
			var m nl.Message
			if m, b, err = nl.Next(b); err != nil {
				return errShortDatagram
			}
			if m.Header.Sequence != seq {
				continue
			}
			switch m.Header.Type {
			case nl.Done:
				if interrupted {
					c.log.Warn("conntrack dump interrupted by changes, may be incomplete", "op", "dump")
				}
				if bad > 0 {
					c.log.Warn("conntrack entries skipped: cannot parse", "op", "dump", "count", bad, "err", badErr)
				}
				return nil
			case nl.Error:
				errno, err := ackErrno(m)
				if err == nil && errno != 0 {
					err = errno
				}
				if err != nil {
					return err
				}
				continue
			}
			interrupted = interrupted || m.Header.Flags&nl.DumpInterrupted != 0
			_, f, _, err := parseMessage(m)
			if err != nil {
				// One entry the parser does not know (a newer kernel)
				// must not fail the whole dump.
				bad++
				badErr = err
				continue
			}
			if c.filter.Match(&f) {
				fn(&f)
			}
		}
	}
}

// errnoOf returns the errno a netlink error carries, or 0.
func errnoOf(err error) unix.Errno {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 0
}
