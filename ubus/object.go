package ubus

import (
	"bytes"
	"context"
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"github.com/carpd/carpd/ubus/blob"
	"github.com/carpd/carpd/ubus/json"
)

// Arg is one argument of a method signature: its name and the blobmsg type
// the method expects. `ubus -v list` shows Boolean (TypeBool), Integer
// (TypeInt32), String, Array and Table; stick to those five
// (docs/ubus-protocol.md#blob-and-blobmsg).
type Arg struct {
	Name string
	Type blob.Type
}

// Handler serves one method call. args is the call's DATA as a JSON object
// ("{}" without arguments), with every argument the caller sent: calls through
// rpcd/uhttpd add "ubus_rpc_session", so handlers must ignore unknown members,
// and should accept numbers of any width and 0/1 for booleans (blob.Decoder
// and json.Unmarshal into a struct both do).
//
// The result must be a JSON object, or nil to send no DATA at all. A
// *StatusError answers with its status; any other error answers
// UNKNOWN_ERROR. ctx is cancelled after Config.HandlerTimeout or when the
// Conn closes; RequestFromContext tells who called.
type Handler func(ctx context.Context, args json.RawMessage) (json.RawMessage, error)

// Method is one method of an object.
type Method struct {
	Name string
	// Signature is what `ubus -v list` shows. ubusd does not check calls
	// against it, and neither does this package.
	Signature []Arg
	Handler   Handler
}

// Object is an object registered with ubusd on a Conn: a named object with
// methods (AddObject) or an anonymous subscriber (Subscribe).
type Object struct {
	c    *Conn
	path string
	// id and typeID are set by the reader, under Conn.mu, before the
	// Object is published; read-only afterwards.
	id, typeID uint32
	// methods is read-only after AddObject.
	methods map[string]Method
	// notify is the callback of a subscriber object, nil otherwise.
	notify func(ctx context.Context, typ string, data json.RawMessage)
	// active: ubusd last said the object has subscribers.
	active atomic.Bool
}

// ID is the object id ubusd assigned.
func (o *Object) ID() uint32 { return o.id }

// TypeID is the object type id ubusd assigned (0 for anonymous objects).
func (o *Object) TypeID() uint32 { return o.typeID }

// Path is the object's name, "" for anonymous objects.
func (o *Object) Path() string { return o.path }

// Subscribed reports whether the object has subscribers, as last told by
// ubusd (NOTIFY with ACTIVE, docs/ubus-protocol.md#exchanges).
func (o *Object) Subscribed() bool { return o.active.Load() }

// AddObject registers an object named path with the given methods
// (ADD_OBJECT, docs/ubus-protocol.md#exchanges) and serves calls to it until
// the Conn closes or Remove.
// ubusd refuses a path that is already taken with INVALID_ARGUMENT.
func (c *Conn) AddObject(ctx context.Context, path string, methods []Method) (*Object, error) {
	if path == "" {
		return nil, fmt.Errorf("ubus: add object: empty path")
	}
	o := &Object{c: c, path: path, methods: make(map[string]Method, len(methods))}
	for _, m := range methods {
		if _, dup := o.methods[m.Name]; dup || m.Handler == nil {
			return nil, fmt.Errorf("ubus: add object %s: method %q duplicated or without handler", path, m.Name)
		}
		o.methods[m.Name] = m
	}
	msg, err := addObjectMessage(path, methods)
	if err != nil {
		return nil, fmt.Errorf("ubus: add object %s: %w", path, err)
	}
	if err := c.addObject(ctx, msg, o, nil); err != nil {
		return nil, fmt.Errorf("ubus: add object %s: %w", path, err)
	}
	return o, nil
}

// addObjectMessage builds ADD_OBJECT {OBJPATH, SIGNATURE} as libubus'
// ubus_add_object does: one TABLE per method named after it, holding one
// INT32 per argument whose value is the expected blobmsg type.
func addObjectMessage(path string, methods []Method) (Message, error) {
	e := blob.NewEncoder()
	for _, m := range methods {
		e.Table(m.Name, func(e *blob.Encoder) error {
			for _, a := range m.Signature {
				e.Int32(a.Name, int32(a.Type))
			}
			return nil
		})
	}
	sig, err := e.Encode()
	if err != nil {
		return Message{}, err
	}
	return Message{Type: MsgAddObject, Attrs: []blob.Attr{
		StringAttr(AttrObjPath, path),
		{ID: AttrSignature, Data: sig},
	}}, nil
}

// ParseSignature decodes a SIGNATURE payload into methods without handlers.
// Argument types are read with any integer width.
func ParseSignature(b []byte) ([]Method, error) {
	var methods []Method
	d := blob.NewDecoder(b)
	for d.Next() {
		m := Method{Name: d.Name()}
		d.Nested(func(d *blob.Decoder) error {
			for d.Next() {
				m.Signature = append(m.Signature, Arg{Name: d.Name(), Type: blob.Type(d.Uint())})
			}
			return nil
		})
		methods = append(methods, m)
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("ubus: signature: %w", err)
	}
	return methods, nil
}

// addObject sends an ADD_OBJECT and registers o (and l, for listeners) with
// the id from the DATA reply. The reader does that as soon as the DATA
// arrives, before the STATUS, so that a call, event or subscriber NOTIFY
// that follows right behind is not lost.
func (c *Conn) addObject(ctx context.Context, msg Message, o *Object, l *Listener) error {
	var registered bool
	_, err := c.request(ctx, msg, func(m Message) { // runs under c.mu
		id, ok := m.Uint32(AttrObjID)
		if !ok || registered {
			return
		}
		registered = true
		o.id = id
		o.typeID, _ = m.Uint32(AttrObjType)
		c.objects[id] = o
		if o.path != "" {
			c.byPath[o.path] = o
		}
		if l != nil {
			l.id = id
			c.listeners[id] = l
		}
	})
	if err == nil && !registered {
		err = fmt.Errorf("ADD_OBJECT reply without OBJID: %w", errReply)
	}
	if err != nil && registered {
		c.unregister(o)
	}
	return err
}

// unregister forgets an object locally.
func (c *Conn) unregister(o *Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.objects[o.id] == o {
		delete(c.objects, o.id)
		delete(c.listeners, o.id)
	}
	if o.path != "" && c.byPath[o.path] == o {
		delete(c.byPath, o.path)
	}
}

// Object returns our registered object with the given path, or nil.
func (c *Conn) Object(path string) *Object {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byPath[path]
}

// Remove unregisters the object (REMOVE_OBJECT). Calls already queued are
// answered NOT_FOUND.
func (o *Object) Remove(ctx context.Context) error {
	o.c.unregister(o)
	m := Message{Type: MsgRemoveObject, Attrs: []blob.Attr{Uint32Attr(AttrObjID, o.id)}}
	if _, err := o.c.request(ctx, m, nil); err != nil {
		return fmt.Errorf("ubus: remove object %d: %w", o.id, err)
	}
	return nil
}

// Notify publishes a notification of the given type to the object's
// subscribers (docs/ubus-protocol.md#exchanges, "notify"), fire-and-forget:
// it sets NO_REPLY, so ubusd sends nothing back. data is a JSON object or
// nil.
func (o *Object) Notify(ctx context.Context, typ string, data json.RawMessage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tbl, err := blob.FromJSON(data)
	if err != nil {
		return fmt.Errorf("ubus: notify %s: %w", typ, err)
	}
	return o.c.send(notifyMessage(o.id, typ, tbl))
}

// notifyMessage builds NOTIFY {OBJID, METHOD, DATA, NO_REPLY 1}, peer = the
// publishing object (libubus __ubus_notify_async).
func notifyMessage(id uint32, typ string, data []byte) Message {
	return Message{Type: MsgNotify, Peer: id, Attrs: []blob.Attr{
		Uint32Attr(AttrObjID, id),
		StringAttr(AttrMethod, typ),
		DataAttr(data),
		Uint8Attr(AttrNoReply, 1),
	}}
}

// Request describes the call a handler is serving.
type Request struct {
	// Object and ObjectID name the object called.
	Object   string
	ObjectID uint32
	Method   string
	// Peer is the caller's client id.
	Peer uint32
	// User and Group are the caller's credentials, as added by ubusd.
	User, Group string
}

type requestKey struct{}

// RequestFromContext returns the Request a handler's context carries.
func RequestFromContext(ctx context.Context) (Request, bool) {
	r, ok := ctx.Value(requestKey{}).(Request)
	return r, ok
}

// serve answers one incoming INVOKE as libubus does
// (docs/ubus-protocol.md#exchanges, "serve a call"): at most one DATA
// {OBJID, DATA}, then STATUS {STATUS, OBJID}, both with the call's seq and
// peer; nothing at all if NO_REPLY is set.
func (c *Conn) serve(inv invocation) {
	m := inv.msg
	id, _ := m.Uint32(AttrObjID)
	data, hasData, st := c.handle(inv.obj, m)
	if nr, _ := m.Uint8(AttrNoReply); nr != 0 {
		return
	}
	if hasData {
		if err := c.write(dataReply(m.Seq, m.Peer, id, data)); err != nil {
			return
		}
	}
	_ = c.write(statusReply(m.Seq, m.Peer, id, st))
}

// dataReply is libubus' ubus_send_reply: DATA {OBJID, DATA}.
func dataReply(seq uint16, peer, obj uint32, data []byte) Message {
	return Message{Type: MsgData, Seq: seq, Peer: peer, Attrs: []blob.Attr{
		Uint32Attr(AttrObjID, obj),
		DataAttr(data),
	}}
}

// statusReply is libubus' ubus_complete_deferred_request: STATUS {STATUS,
// OBJID}.
func statusReply(seq uint16, peer, obj uint32, st Status) Message {
	return Message{Type: MsgStatus, Seq: seq, Peer: peer, Attrs: []blob.Attr{
		Uint32Attr(AttrStatus, uint32(st)),
		Uint32Attr(AttrObjID, obj),
	}}
}

// handle runs the handler for an INVOKE and returns the DATA payload to
// send (if any) and the status.
func (c *Conn) handle(o *Object, m Message) (data []byte, hasData bool, st Status) {
	if o == nil {
		return nil, false, StatusNotFound
	}
	method, _ := m.String(AttrMethod)
	var h Handler
	if o.notify != nil {
		notify := o.notify
		h = func(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
			notify(ctx, method, args)
			return nil, nil
		}
	} else if mt, ok := o.methods[method]; ok {
		h = mt.Handler
	} else {
		return nil, false, StatusMethodNotFound
	}
	a, ok := m.Attr(AttrData)
	if !ok {
		return nil, false, StatusInvalidArgument
	}
	args, err := blob.ToJSON(a.Data)
	if err != nil {
		c.log.Warn("ubus call with malformed arguments", "op", "invoke", "object", o.path, "method", method, "err", err)
		return nil, false, StatusInvalidArgument
	}
	req := Request{Object: o.path, ObjectID: o.id, Method: method, Peer: m.Peer}
	req.User, _ = m.String(AttrUser)
	req.Group, _ = m.String(AttrGroup)
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.HandlerTimeout)
	defer cancel()
	res, err := c.runHandler(context.WithValue(ctx, requestKey{}, req), h, args)
	if err != nil {
		c.log.Debug("ubus handler failed", "op", "invoke", "object", o.path, "method", method, "err", err)
		return nil, false, StatusOf(err)
	}
	if res == nil || bytes.Equal(bytes.TrimSpace(res), []byte("null")) {
		return nil, false, StatusOK
	}
	tbl, err := blob.FromJSON(res)
	if err != nil {
		c.log.Error("ubus handler returned bad result", "op", "invoke", "object", o.path, "method", method, "err", err)
		return nil, false, StatusUnknownError
	}
	return tbl, true, StatusOK
}

// runHandler calls h, turning a panic into UNKNOWN_ERROR so that one bad
// request cannot take the daemon down.
func (c *Conn) runHandler(ctx context.Context, h Handler, args json.RawMessage) (res json.RawMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("ubus handler panicked", "op", "invoke", "err", fmt.Errorf("%v", p), "stack", string(debug.Stack()))
			res, err = nil, StatusUnknownError.Err()
		}
	}()
	return h(ctx, args)
}
