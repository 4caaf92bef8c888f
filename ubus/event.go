package ubus

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/carpd/carpd/ubus/blob"
	"github.com/carpd/carpd/ubus/json"
)

// Send broadcasts an event, like `ubus send event data`
// (docs/ubus-protocol.md#exchanges, "send an event"): INVOKE "send" on the
// event object 1 with DATA {"id": event, "data": {…}}. data is a JSON object
// or nil. ubusd refuses names starting with "ubus." (PERMISSION_DENIED) and
// never loops an event back to the sender's own listeners.
func (c *Conn) Send(ctx context.Context, event string, data json.RawMessage) error {
	m, err := sendMessage(event, data)
	if err != nil {
		return fmt.Errorf("ubus: send %s: %w", event, err)
	}
	if _, err := c.request(ctx, m, nil); err != nil {
		return fmt.Errorf("ubus: send %s: %w", event, err)
	}
	return nil
}

// sendMessage builds the INVOKE libubus' ubus_send_event sends:
//
//	blobmsg_add_string(&b, "id", id);
//	blobmsg_add_field(&b, BLOBMSG_TYPE_TABLE, "data", blob_data(data), blob_len(data));
func sendMessage(event string, data json.RawMessage) (Message, error) {
	tbl, err := blob.FromJSON(data)
	if err != nil {
		return Message{}, err
	}
	e := blob.NewEncoder()
	e.String("id", event)
	e.Raw(blob.TypeTable, "data", tbl)
	args, err := e.Encode()
	if err != nil {
		return Message{}, err
	}
	return eventObjectCall("send", args), nil
}

// eventObjectCall builds INVOKE {OBJID 1, METHOD, DATA}, peer 1.
func eventObjectCall(method string, args []byte) Message {
	return Message{Type: MsgInvoke, Peer: ObjectEvent, Attrs: []blob.Attr{
		Uint32Attr(AttrObjID, ObjectEvent),
		StringAttr(AttrMethod, method),
		DataAttr(args),
	}}
}

// registerMessage builds the "register" call of `ubus listen` (libubus
// ubus_register_event_handler): DATA {"object": INT32 id, "pattern": STRING}.
func registerMessage(id uint32, pattern string) (Message, error) {
	e := blob.NewEncoder()
	e.Int32("object", int32(id))
	e.String("pattern", pattern)
	args, err := e.Encode()
	if err != nil {
		return Message{}, err
	}
	return eventObjectCall("register", args), nil
}

// Listener receives events matching one pattern; see Conn.Listen.
type Listener struct {
	c       *Conn
	obj     *Object
	id      uint32 // the anonymous object id; set by the reader
	pattern string
	fn      func(event string, data json.RawMessage)
	ch      chan eventMsg // reader → listener goroutine; never closed
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when the goroutine returns
	dropped atomic.Uint64
	closed  atomic.Bool
}

// eventMsg is one event on its way to a listener.
type eventMsg struct {
	name string
	data []byte // blobmsg members
}

// Listen registers for events whose name matches pattern (an exact name, a
// prefix ending in "*", or "*" for all), like `ubus listen pattern`
// (docs/ubus-protocol.md#exchanges, "listen for events"). fn runs on the
// listener's own goroutine, one event at a time, with the event data as a
// JSON object. Events that arrive while Config.EventQueue events are waiting
// are dropped and counted: a slow fn never blocks the Conn's reader.
//
// The listener lives until Close on it or on the Conn. (Listen returns the
// Listener, not only an error, to give callers the drop counter and a way to
// stop.)
func (c *Conn) Listen(ctx context.Context, pattern string, fn func(event string, data json.RawMessage)) (*Listener, error) {
	l := &Listener{
		c:       c,
		obj:     &Object{c: c},
		pattern: pattern,
		fn:      fn,
		ch:      make(chan eventMsg, c.cfg.EventQueue),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	// Start the goroutine before registering, while the Conn is known to
	// be up: c.wg.Add must not race with Close's Wait.
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("ubus: listen %s: %w", pattern, err)
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go l.run()

	err := c.addObject(ctx, Message{Type: MsgAddObject}, l.obj, l)
	if err == nil {
		var m Message
		if m, err = registerMessage(l.id, pattern); err == nil {
			_, err = c.request(ctx, m, nil)
		}
		if err != nil {
			c.cleanup(l.obj)
		}
	}
	if err != nil {
		l.halt()
		return nil, fmt.Errorf("ubus: listen %s: %w", pattern, err)
	}
	return l, nil
}

// run calls fn for each queued event until the Listener or the Conn closes.
func (l *Listener) run() {
	defer l.c.wg.Done()
	defer close(l.done)
	for {
		select {
		case <-l.stop:
			return
		case <-l.c.ctx.Done():
			return
		case ev := <-l.ch:
			data, err := blob.ToJSON(ev.data)
			if err != nil {
				l.c.log.Warn("ubus event with malformed data", "op", "listen", "event", ev.name, "err", err)
				continue
			}
			l.fn(ev.name, data)
		}
	}
}

// deliver queues an event without blocking; the reader calls it.
func (l *Listener) deliver(m Message) {
	name, _ := m.String(AttrMethod)
	var data []byte
	if a, ok := m.Attr(AttrData); ok {
		data = a.Data
	}
	select {
	case l.ch <- eventMsg{name: name, data: data}:
	default:
		l.dropped.Add(1)
		l.c.eventsDropped.Add(1)
	}
}

// Dropped counts events lost because the queue was full.
func (l *Listener) Dropped() uint64 { return l.dropped.Load() }

// Close unregisters the listener's object, which ends the registration, and
// waits for its goroutine. It must not be called from fn.
func (l *Listener) Close(ctx context.Context) error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := l.obj.Remove(ctx)
	l.halt()
	return err
}

// halt stops the goroutine and waits for it.
func (l *Listener) halt() {
	l.c.unregister(l.obj)
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// Subscription is a subscriber object subscribed to one target object.
type Subscription struct {
	obj    *Object
	target uint32
}

// Subscribe subscribes to notifications of the object at path, like `ubus
// subscribe path` (docs/ubus-protocol.md#exchanges): an anonymous subscriber
// object, then SUBSCRIBE {OBJID, TARGET}. fn runs on a handler goroutine for
// each notification, with its type and data; the STATUS reply libubus sends
// is sent after fn returns (unless the publisher set NO_REPLY).
func (c *Conn) Subscribe(ctx context.Context, path string, fn func(typ string, data json.RawMessage)) (*Subscription, error) {
	infos, err := c.Lookup(ctx, path)
	if err != nil {
		return nil, err
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("ubus: subscribe %s: %w", path, StatusNotFound.Err())
	}
	o := &Object{c: c, notify: func(_ context.Context, typ string, data json.RawMessage) { fn(typ, data) }}
	if err := c.addObject(ctx, Message{Type: MsgAddObject}, o, nil); err != nil {
		return nil, fmt.Errorf("ubus: subscribe %s: %w", path, err)
	}
	s := &Subscription{obj: o, target: infos[0].ID}
	if _, err := c.request(ctx, subscribeMessage(MsgSubscribe, o.id, s.target), nil); err != nil {
		c.cleanup(o)
		return nil, fmt.Errorf("ubus: subscribe %s: %w", path, err)
	}
	return s, nil
}

// subscribeMessage builds SUBSCRIBE or UNSUBSCRIBE {OBJID, TARGET}.
func subscribeMessage(t MsgType, obj, target uint32) Message {
	return Message{Type: t, Attrs: []blob.Attr{
		Uint32Attr(AttrObjID, obj),
		Uint32Attr(AttrTarget, target),
	}}
}

// Close unsubscribes and removes the subscriber object.
func (s *Subscription) Close(ctx context.Context) error {
	_, err := s.obj.c.request(ctx, subscribeMessage(MsgUnsubscribe, s.obj.id, s.target), nil)
	if rerr := s.obj.Remove(ctx); err == nil {
		err = rerr
	}
	return err
}

// cleanup removes an object after a failed setup step, best effort and
// bounded, whatever state the caller's context is in.
func (c *Conn) cleanup(o *Object) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WriteTimeout)
	defer cancel()
	_ = o.Remove(ctx)
}
