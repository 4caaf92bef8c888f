package ubus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/ubus/blob"
	"github.com/carpd/carpd/ubus/json"
)

// Logger is what a Conn or Client logs to: the leveled methods of
// *slog.Logger (log/slog), which satisfies it, and of carpd's own logger.
// The arguments are slog's key, value pairs.
type Logger interface {
	Debug(msg string, args ...any)
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
}

// discard is the default Logger.
type discard struct{}

func (discard) Debug(string, ...any) {}
func (discard) Info(string, ...any)  {}
func (discard) Warn(string, ...any)  {}
func (discard) Error(string, ...any) {}

// DefaultSocket is ubusd's socket since October 2020
// (docs/ubus-protocol.md#transport).
const DefaultSocket = "/var/run/ubus/ubus.sock"

// Config tunes a Conn or a Client. A nil *Config, and zero fields, mean the
// defaults documented on each field.
type Config struct {
	// Logger receives connection events with the keys "op" and "err".
	// A *slog.Logger is one. Default: discard.
	Logger Logger
	// DialTimeout bounds connecting and reading HELLO when the context has
	// no earlier deadline. Default 5 s.
	DialTimeout time.Duration
	// WriteTimeout bounds each write to ubusd. A write that times out
	// leaves a partial message on the stream, so it closes the Conn.
	// Default 5 s.
	WriteTimeout time.Duration
	// Handlers is how many method handlers run at once. Default 4.
	Handlers int
	// InvokeQueue is how many incoming calls wait for a free handler.
	// When it is full the reader drops the call (counted in
	// Stats.InvokesDropped) rather than block, and the caller times out.
	// Default 64.
	InvokeQueue int
	// HandlerTimeout bounds the context given to each handler; ubus' own
	// CLI gives up after 30 s. Default 30 s.
	HandlerTimeout time.Duration
	// EventQueue is each listener's buffer. When it is full new events are
	// dropped and counted (Listener.Dropped, Stats.EventsDropped). Default 64.
	EventQueue int
	// MinBackoff and MaxBackoff bound a Client's reconnect delay, which
	// doubles from MinBackoff to MaxBackoff with ±20 % jitter.
	// Defaults 100 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
}

// withDefaults returns a copy of cfg with zero fields set to their defaults.
func (cfg *Config) withDefaults() Config {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Logger == nil {
		c.Logger = discard{}
	}
	setDefault(&c.DialTimeout, 5*time.Second)
	setDefault(&c.WriteTimeout, 5*time.Second)
	setDefault(&c.Handlers, 4)
	setDefault(&c.InvokeQueue, 64)
	setDefault(&c.HandlerTimeout, 30*time.Second)
	setDefault(&c.EventQueue, 64)
	setDefault(&c.MinBackoff, 100*time.Millisecond)
	setDefault(&c.MaxBackoff, 5*time.Second)
	return c
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Stats counts what a Conn dropped to keep its reader from blocking.
type Stats struct {
	// EventsDropped: events that found their listener's queue full.
	EventsDropped uint64
	// InvokesDropped: method calls that found the handler queue full.
	InvokesDropped uint64
	// UnmatchedReplies: DATA/STATUS for no pending request (for example a
	// reply that arrived after its caller gave up).
	UnmatchedReplies uint64
}

// Conn is one connection to ubusd.
//
// One reader goroutine reads every message as it arrives and never blocks on
// anything but the socket, because ubusd silently drops messages for a client
// whose backlog exceeds 1 MiB (docs/ubus-protocol.md#transport). It completes
// pending requests, hands incoming calls to a fixed pool of handler
// goroutines through a bounded queue, and hands events to per-listener
// goroutines through bounded queues; when a queue is full the message is
// dropped and counted. Writes are serialized by a mutex and bounded by
// WriteTimeout.
//
// When the connection fails every pending request returns an error that
// wraps net.ErrClosed, and Done is closed. A Conn does not reconnect; Client
// does.
type Conn struct {
	nc  net.Conn
	cfg Config
	log Logger
	id  uint32 // our client id, from HELLO

	wmu sync.Mutex // serializes writes to nc (one message per Write)

	ctx     context.Context    // cancelled when the Conn ends; parent of handler contexts
	cancel  context.CancelFunc // cancels ctx
	invokes chan invocation    // reader → handler workers
	done    chan struct{}      // closed when the reader exits
	wg      sync.WaitGroup     // reader, handler workers, listener goroutines

	mu        sync.Mutex           // guards the fields below
	err       error                // why the Conn ended; nil while it is up
	seq       uint16               // last request sequence number used
	pending   map[reqKey]*request  // requests waiting for STATUS
	objects   map[uint32]*Object   // our objects (and subscribers) by id
	listeners map[uint32]*Listener // our event listeners by object id
	byPath    map[string]*Object   // our named objects by path

	// Counters for Stats.
	eventsDropped    atomic.Uint64
	invokesDropped   atomic.Uint64
	unmatchedReplies atomic.Uint64
}

// reqKey matches replies to requests (docs/ubus-protocol.md#exchanges).
type reqKey struct {
	seq  uint16
	peer uint32
}

// request is a request waiting for its STATUS. The reader fills data and
// status under Conn.mu, then closes done.
type request struct {
	done   chan struct{}
	data   []Message     // DATA replies, in order
	status Status        // from the final STATUS
	err    error         // set instead if the Conn ended first
	onData func(Message) // optional; run by the reader under Conn.mu
}

// invocation is an incoming INVOKE queued for a handler worker.
type invocation struct {
	msg Message
	obj *Object // nil if the object id is not ours
}

// Dial connects to ubusd's Unix socket at path (DefaultSocket if empty),
// reads HELLO and starts the reader. See NewConn.
func Dial(ctx context.Context, path string, cfg *Config) (*Conn, error) {
	if path == "" {
		path = DefaultSocket
	}
	c := cfg.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	// DialUnix, not Dialer.DialContext: a Unix connect never waits (a full
	// backlog is EAGAIN at once), and the generic dialer links Go's whole
	// DNS resolver into the binary (about 250 KB on MIPS, package/SIZE.md).
	nc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("ubus: %w", err)
	}
	return NewConn(ctx, nc, &c)
}

// NewConn starts a Conn on an established connection (a Unix socket, or one
// end of net.Pipe in tests): it waits for HELLO, bounded by ctx and
// cfg.DialTimeout, then starts the reader and handler goroutines. The Conn
// owns nc from then on, and closes it on error.
func NewConn(ctx context.Context, nc net.Conn, cfg *Config) (*Conn, error) {
	c := &Conn{
		nc:        nc,
		cfg:       cfg.withDefaults(),
		done:      make(chan struct{}),
		pending:   make(map[reqKey]*request),
		objects:   make(map[uint32]*Object),
		listeners: make(map[uint32]*Listener),
		byPath:    make(map[string]*Object),
	}
	c.log = c.cfg.Logger
	hello, err := readHello(ctx, nc, c.cfg.DialTimeout)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.id = hello.Peer
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.invokes = make(chan invocation, c.cfg.InvokeQueue)
	c.wg.Add(1 + c.cfg.Handlers)
	go c.readLoop()
	for range c.cfg.Handlers {
		go c.worker()
	}
	return c, nil
}

// readHello reads the HELLO ubusd sends right after accept.
func readHello(ctx context.Context, nc net.Conn, timeout time.Duration) (Message, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = nc.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Unix(1, 0)) })
	m, err := ReadMessage(nc)
	if !stop() {
		err = ctx.Err()
	}
	_ = nc.SetReadDeadline(time.Time{})
	if err != nil {
		return Message{}, fmt.Errorf("ubus: waiting for HELLO: %w", err)
	}
	if m.Type != MsgHello {
		return Message{}, fmt.Errorf("ubus: got %v: %w", m.Type, errHello)
	}
	return m, nil
}

// ClientID is the id ubusd assigned to this connection in HELLO.
func (c *Conn) ClientID() uint32 { return c.id }

// Done is closed when the connection has ended (Close, or ubusd went away).
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is up. The error
// wraps net.ErrClosed.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stats returns the drop counters.
func (c *Conn) Stats() Stats {
	return Stats{
		EventsDropped:    c.eventsDropped.Load(),
		InvokesDropped:   c.invokesDropped.Load(),
		UnmatchedReplies: c.unmatchedReplies.Load(),
	}
}

// Close closes the connection and waits until the reader, the handler
// workers and the listener goroutines have returned; running handlers see
// their context cancelled. It must not be called from a handler or a
// listener callback, which Close would wait for.
func (c *Conn) Close() error {
	c.fail(net.ErrClosed)
	c.wg.Wait()
	return nil
}

// fail ends the Conn once: it records why, closes the socket, cancels the
// handlers and fails every pending request.
func (c *Conn) fail(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if errors.Is(cause, net.ErrClosed) {
		c.err = fmt.Errorf("ubus: %w", net.ErrClosed)
	} else {
		c.err = fmt.Errorf("ubus: connection lost: %w: %w", net.ErrClosed, cause)
	}
	err, pending := c.err, c.pending
	c.pending = nil
	c.mu.Unlock()

	c.cancel()
	_ = c.nc.Close()
	for _, r := range pending {
		r.err = err
		close(r.done)
	}
}

// readLoop is the reader goroutine.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	defer close(c.done)
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		m, err := ReadMessage(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // ubusd hung up
			}
			closing := c.Err() != nil // Close, or a failed write, came first
			c.fail(err)
			if !closing {
				c.log.Warn("ubus connection lost", "op", "read", "err", err)
			}
			return
		}
		c.dispatch(m)
	}
}

// dispatch routes one message without blocking.
func (c *Conn) dispatch(m Message) {
	switch m.Type {
	case MsgData, MsgStatus:
		c.reply(m)
	case MsgInvoke:
		c.incoming(m)
	case MsgNotify:
		// ubusd → owner: first subscriber arrived or last one left.
		id, _ := m.Uint32(AttrObjID)
		active, ok := m.Uint8(AttrActive)
		c.mu.Lock()
		o := c.objects[id]
		c.mu.Unlock()
		if o != nil && ok {
			o.active.Store(active != 0)
		}
	case MsgUnsubscribe:
		// ubusd → subscriber: the target went away.
		id, _ := m.Uint32(AttrObjID)
		target, _ := m.Uint32(AttrTarget)
		c.log.Info("ubus subscription target removed", "op", "unsubscribe", "object", id, "target", target)
	default:
		c.log.Debug("ubus message ignored", "op", "read", "type", m.Type.String())
	}
}

// reply completes or extends a pending request.
func (c *Conn) reply(m Message) {
	key := reqKey{m.Seq, m.Peer}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.pending[key]
	if r == nil {
		c.unmatchedReplies.Add(1)
		return
	}
	if m.Type == MsgData {
		r.data = append(r.data, m)
		if r.onData != nil {
			r.onData(m)
		}
		return
	}
	delete(c.pending, key)
	st, ok := m.Status()
	if !ok {
		r.err = fmt.Errorf("ubus: STATUS without status: %w", errReply)
	}
	r.status = st
	close(r.done)
}

// incoming queues an INVOKE for a handler, or an event for its listener.
func (c *Conn) incoming(m Message) {
	id, _ := m.Uint32(AttrObjID)
	c.mu.Lock()
	l, o := c.listeners[id], c.objects[id]
	c.mu.Unlock()
	if l != nil {
		l.deliver(m)
		return
	}
	select {
	case c.invokes <- invocation{msg: m, obj: o}:
	default:
		c.invokesDropped.Add(1)
		method, _ := m.String(AttrMethod)
		c.log.Warn("ubus call dropped, handlers busy", "op", "invoke", "object", id, "method", method)
	}
}

// worker runs incoming calls until the Conn ends.
func (c *Conn) worker() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case inv := <-c.invokes:
			c.serve(inv)
		}
	}
}

// request sends m with a fresh sequence number and waits for its STATUS.
// A non-OK status returns the request (with any DATA) and a *StatusError.
func (c *Conn) request(ctx context.Context, m Message, onData func(Message)) (*request, error) {
	r := &request{done: make(chan struct{}), onData: onData}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	key := reqKey{peer: m.Peer}
	for {
		c.seq++
		key.seq = c.seq
		if _, busy := c.pending[key]; !busy {
			break
		}
	}
	m.Seq = key.seq
	c.pending[key] = r
	c.mu.Unlock()

	if err := c.write(m); err != nil {
		c.forget(key, r)
		return nil, err
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		c.forget(key, r)
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, r.err
	}
	return r, r.status.Err()
}

// forget drops a pending request that is no longer waited for.
func (c *Conn) forget(key reqKey, r *request) {
	c.mu.Lock()
	if c.pending[key] == r {
		delete(c.pending, key)
	}
	c.mu.Unlock()
}

// send writes a message that expects no reply, with a fresh sequence number.
func (c *Conn) send(m Message) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.seq++
	m.Seq = c.seq
	c.mu.Unlock()
	return c.write(m)
}

// write sends one message. A failed write may have left part of it on the
// stream, so it ends the Conn.
func (c *Conn) write(m Message) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.fail(fmt.Errorf("write %v: %w", m.Type, err))
		return c.Err()
	}
	return nil
}

// Ping sends PING and waits for ubusd's echo and STATUS.
func (c *Conn) Ping(ctx context.Context) error {
	_, err := c.request(ctx, Message{Type: MsgPing}, nil)
	return err
}

// ObjectInfo describes an object found by Lookup.
type ObjectInfo struct {
	Path   string
	ID     uint32
	TypeID uint32
	// Methods are the methods of the object's type with their argument
	// signatures; Handler is nil.
	Methods []Method
}

// Lookup resolves an object path (docs/ubus-protocol.md#exchanges): an exact
// path, a prefix
// ending in "*", or "" for all objects. An unknown path returns a
// *StatusError with StatusNotFound.
func (c *Conn) Lookup(ctx context.Context, path string) ([]ObjectInfo, error) {
	r, err := c.request(ctx, lookupMessage(path), nil)
	if err != nil {
		return nil, fmt.Errorf("ubus: lookup %q: %w", path, err)
	}
	infos := make([]ObjectInfo, 0, len(r.data))
	for _, d := range r.data {
		info, err := parseObjectInfo(d)
		if err != nil {
			return nil, fmt.Errorf("ubus: lookup %q: %w", path, err)
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// lookupMessage builds LOOKUP {OBJPATH}, or an empty LOOKUP for all objects.
func lookupMessage(path string) Message {
	m := Message{Type: MsgLookup}
	if path != "" {
		m.Attrs = []blob.Attr{StringAttr(AttrObjPath, path)}
	}
	return m
}

// parseObjectInfo decodes one LOOKUP DATA reply:
// {OBJPATH, OBJID, OBJTYPE, SIGNATURE}.
func parseObjectInfo(m Message) (ObjectInfo, error) {
	var info ObjectInfo
	var ok bool
	if info.ID, ok = m.Uint32(AttrObjID); !ok {
		return info, fmt.Errorf("LOOKUP reply without OBJID: %w", errReply)
	}
	info.Path, _ = m.String(AttrObjPath)
	info.TypeID, _ = m.Uint32(AttrObjType)
	if sig, ok := m.Attr(AttrSignature); ok {
		methods, err := ParseSignature(sig.Data)
		if err != nil {
			return info, err
		}
		info.Methods = methods
	}
	return info, nil
}

// Call looks up path and invokes method on it with args, a JSON object (nil
// for none), returning the reply data as a JSON object, or nil if the method
// sent none. This is `ubus call path method args`.
func (c *Conn) Call(ctx context.Context, path, method string, args json.RawMessage) (json.RawMessage, error) {
	infos, err := c.Lookup(ctx, path)
	if err != nil {
		return nil, err
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("ubus: lookup %q: %w", path, StatusNotFound.Err())
	}
	return c.Invoke(ctx, infos[0].ID, method, args)
}

// Invoke calls method on the object with the given id
// (docs/ubus-protocol.md#exchanges, "call a method"). When the object sends
// several DATA replies their members are merged into one object, as uhttpd's
// ubus handler does. A non-OK status returns a *StatusError.
func (c *Conn) Invoke(ctx context.Context, id uint32, method string, args json.RawMessage) (json.RawMessage, error) {
	data, err := blob.FromJSON(args)
	if err != nil {
		return nil, fmt.Errorf("ubus: call %s: %w", method, err)
	}
	r, err := c.request(ctx, invokeMessage(id, method, data), nil)
	if err != nil {
		return nil, fmt.Errorf("ubus: call %s: %w", method, err)
	}
	var merged []byte
	found := false
	for _, d := range r.data {
		if a, ok := d.Attr(AttrData); ok {
			merged = append(merged, a.Data...)
			found = true
		}
	}
	if !found {
		return nil, nil
	}
	j, err := blob.ToJSON(merged)
	if err != nil {
		return nil, fmt.Errorf("ubus: call %s: reply: %w", method, err)
	}
	return j, nil
}

// invokeMessage builds INVOKE {OBJID, METHOD, DATA}, peer = the object. DATA
// is always present, empty without arguments (07 00 00 04), as libubus sends.
func invokeMessage(id uint32, method string, data []byte) Message {
	return Message{Type: MsgInvoke, Peer: id, Attrs: []blob.Attr{
		Uint32Attr(AttrObjID, id),
		StringAttr(AttrMethod, method),
		DataAttr(data),
	}}
}
