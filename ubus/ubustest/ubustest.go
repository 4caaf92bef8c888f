// Package ubustest provides a fake ubusd for tests of ubus clients.
//
// The Server speaks the same native protocol as ubusd
// (docs/ubus-protocol.md#exchanges) for what carpd uses: HELLO, LOOKUP,
// ADD_OBJECT/REMOVE_OBJECT, INVOKE routed between clients (with USER/GROUP
// added and replies routed back with the peer rewritten), events (the "send"
// and "register" methods of object 1, and ubus.object.add/remove),
// SUBSCRIBE/UNSUBSCRIBE/NOTIFY with subscriber presence, and PING. Clients
// connect over net.Pipe (Pipe) or a Unix socket (Listen); a Server can be
// closed and a new one started on the same socket path to test reconnects.
// ACLs, MONITOR and fd passing are not implemented.
//
// Like ubusd, the Server never blocks on a slow client: each client has a
// bounded outgoing queue and messages beyond it are dropped.
package ubustest

import (
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/carpd/carpd/ubus"
	"github.com/carpd/carpd/ubus/blob"
)

// outQueue is each client's outgoing backlog in messages.
const outQueue = 1024

// Server is a fake ubusd. The zero value is not usable; call NewServer.
type Server struct {
	// Hook, if set before clients connect, sees every message a client
	// sends before the Server handles it; returning false drops it. Tests
	// use it to inject faults (lost replies, refused calls).
	Hook func(client uint32, m *ubus.Message) bool

	wg sync.WaitGroup // accept loop and client goroutines

	mu        sync.Mutex          // guards the fields below
	closed    bool                // Close was called; no new clients
	ln        net.Listener        // from Listen, or nil
	clients   map[uint32]*client  // by client id
	objects   map[uint32]*object  // by object id
	byPath    map[string]*object  // named objects by path
	listeners []registration      // event registrations, in order
	subs      map[uint32][]uint32 // target object → subscriber objects
	eventSeq  uint16              // seq of event deliveries (ubusd-global)
	used      map[uint32]bool     // ids handed out
}

// client is one connected client.
type client struct {
	id   uint32
	nc   net.Conn
	out  chan []byte   // bounded backlog, drained by the writer
	stop chan struct{} // closed when the client is gone
}

// object is a registered object.
type object struct {
	id, typeID uint32
	path       string
	owner      uint32
	signature  []byte // SIGNATURE payload
}

// registration is one event listener registration.
type registration struct {
	obj     uint32
	pattern string
}

// NewServer returns a Server with no clients.
func NewServer() *Server {
	return &Server{
		clients: make(map[uint32]*client),
		objects: make(map[uint32]*object),
		byPath:  make(map[string]*object),
		subs:    make(map[uint32][]uint32),
		used:    map[uint32]bool{},
	}
}

// Pipe connects a new client over net.Pipe and returns the client's end,
// ready for ubus.NewConn.
func (s *Server) Pipe() net.Conn {
	cc, sc := net.Pipe()
	if err := s.serve(sc); err != nil {
		cc.Close()
	}
	return cc
}

// Listen serves clients on a Unix socket at path, removing a stale socket
// file first, until Close.
func (s *Server) Listen(path string) error {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.ln = ln
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if s.serve(nc) != nil {
				nc.Close()
			}
		}
	}()
	return nil
}

// Close disconnects every client, stops listening and waits for the
// Server's goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for _, c := range s.clients {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Objects returns the paths of the named objects, sorted.
func (s *Server) Objects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	paths := make([]string, 0, len(s.byPath))
	for p := range s.byPath {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}

// Clients returns how many clients are connected.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// Disconnect drops the client with the given id, as if ubusd had kicked it.
func (s *Server) Disconnect(id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[id]; c != nil {
		c.nc.Close()
	}
}

// newIDLocked hands out a random unused id ≥ 1024, as ubusd does.
func (s *Server) newIDLocked() uint32 {
	for {
		id := rand.Uint32()
		if id >= 1024 && !s.used[id] {
			s.used[id] = true
			return id
		}
	}
}

// serve registers a client, sends HELLO and starts its goroutines.
func (s *Server) serve(nc net.Conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	c := &client{nc: nc, out: make(chan []byte, outQueue), stop: make(chan struct{})}
	c.id = s.newIDLocked()
	s.clients[c.id] = c
	s.sendLocked(c, ubus.Message{Type: ubus.MsgHello, Peer: c.id})
	s.wg.Add(2)
	go s.writeLoop(c)
	go s.readLoop(c)
	return nil
}

// writeLoop drains a client's backlog.
func (s *Server) writeLoop(c *client) {
	defer s.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case b := <-c.out:
			if _, err := c.nc.Write(b); err != nil {
				c.nc.Close()
				return
			}
		}
	}
}

// readLoop handles a client's messages until it disconnects.
func (s *Server) readLoop(c *client) {
	defer s.wg.Done()
	defer s.drop(c)
	for {
		m, err := ubus.ReadMessage(c.nc)
		if err != nil {
			return
		}
		if s.Hook != nil && !s.Hook(c.id, &m) {
			continue
		}
		s.mu.Lock()
		s.handleLocked(c, m)
		s.mu.Unlock()
	}
}

// drop forgets a disconnected client and everything it owned, telling
// subscribers of its objects (UNSUBSCRIBE) and listeners (ubus.object.remove).
func (s *Server) drop(c *client) {
	c.nc.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	close(c.stop)
	delete(s.clients, c.id)
	for _, o := range s.objects {
		if o.owner == c.id {
			s.removeObjectLocked(o)
		}
	}
}

// sendLocked queues a message for a client, dropping it if the backlog is
// full as ubusd does.
func (s *Server) sendLocked(c *client, m ubus.Message) {
	b, err := m.MarshalBinary()
	if err != nil {
		return
	}
	select {
	case c.out <- b:
	default:
	}
}

// statusLocked sends STATUS {STATUS st, extra...} as the reply to m.
func (s *Server) statusLocked(c *client, m ubus.Message, st ubus.Status, extra ...blob.Attr) {
	attrs := append([]blob.Attr{ubus.Uint32Attr(ubus.AttrStatus, uint32(st))}, extra...)
	s.sendLocked(c, ubus.Message{Type: ubus.MsgStatus, Seq: m.Seq, Peer: m.Peer, Attrs: attrs})
}

// handleLocked dispatches one client message.
func (s *Server) handleLocked(c *client, m ubus.Message) {
	// Requests ubusd answers itself reply with peer 0 (the request's peer);
	// INVOKE and NOTIFY are routed to other clients.
	switch m.Type {
	case ubus.MsgPing:
		s.sendLocked(c, ubus.Message{Type: ubus.MsgData, Seq: m.Seq, Attrs: m.Attrs})
		s.statusLocked(c, m, ubus.StatusOK)
	case ubus.MsgLookup:
		s.lookupLocked(c, m)
	case ubus.MsgAddObject:
		s.addObjectLocked(c, m)
	case ubus.MsgRemoveObject:
		// Only the owner may remove an object; ubusd answers NOT_FOUND
		// otherwise, and DATA {OBJID} + STATUS on success.
		id, _ := m.Uint32(ubus.AttrObjID)
		o := s.objects[id]
		if o == nil || o.owner != c.id {
			s.statusLocked(c, m, ubus.StatusNotFound)
			return
		}
		s.removeObjectLocked(o)
		s.sendLocked(c, ubus.Message{Type: ubus.MsgData, Seq: m.Seq, Attrs: []blob.Attr{ubus.Uint32Attr(ubus.AttrObjID, id)}})
		s.statusLocked(c, m, ubus.StatusOK)
	case ubus.MsgInvoke:
		s.invokeLocked(c, m)
	case ubus.MsgData, ubus.MsgStatus:
		// A reply to a forwarded INVOKE: peer is the caller's client
		// id; rewrite it to the object id
		// (docs/ubus-protocol.md#exchanges). Replies to events (peer
		// 0) are discarded.
		to := s.clients[m.Peer]
		obj, ok := m.Uint32(ubus.AttrObjID)
		if to == nil || !ok || s.objects[obj] == nil || s.objects[obj].owner != c.id {
			return
		}
		m.Peer = obj
		s.sendLocked(to, m)
	case ubus.MsgSubscribe, ubus.MsgUnsubscribe:
		s.subscribeLocked(c, m)
	case ubus.MsgNotify:
		s.notifyLocked(c, m)
	default:
		s.statusLocked(c, m, ubus.StatusInvalidCommand)
	}
}

// lookupLocked answers LOOKUP: one DATA per object, then STATUS.
func (s *Server) lookupLocked(c *client, m ubus.Message) {
	// No path lists every named object; a trailing '*' is a prefix match;
	// otherwise the path must match exactly.
	path, hasPath := m.String(ubus.AttrObjPath)
	var found []*object
	for p, o := range s.byPath {
		switch {
		case !hasPath,
			p == path,
			strings.HasSuffix(path, "*") && strings.HasPrefix(p, strings.TrimSuffix(path, "*")):
			found = append(found, o)
		}
	}
	if hasPath && len(found) == 0 {
		s.statusLocked(c, m, ubus.StatusNotFound)
		return
	}
	slices.SortFunc(found, func(a, b *object) int { return strings.Compare(a.path, b.path) })
	for _, o := range found {
		s.sendLocked(c, ubus.Message{Type: ubus.MsgData, Seq: m.Seq, Attrs: []blob.Attr{
			ubus.StringAttr(ubus.AttrObjPath, o.path),
			ubus.Uint32Attr(ubus.AttrObjID, o.id),
			ubus.Uint32Attr(ubus.AttrObjType, o.typeID),
			{ID: ubus.AttrSignature, Data: o.signature},
		}})
	}
	s.statusLocked(c, m, ubus.StatusOK)
}

// addObjectLocked answers ADD_OBJECT with DATA {OBJID[, OBJTYPE]} and STATUS.
func (s *Server) addObjectLocked(c *client, m ubus.Message) {
	// Without OBJPATH and SIGNATURE the object is anonymous (listeners,
	// subscribers): it gets an id but no type and no path.
	path, hasPath := m.String(ubus.AttrObjPath)
	sig, hasSig := m.Attr(ubus.AttrSignature)
	if hasPath && s.byPath[path] != nil {
		s.statusLocked(c, m, ubus.StatusInvalidArgument)
		return
	}
	if hasSig {
		if _, err := ubus.ParseSignature(sig.Data); err != nil {
			s.statusLocked(c, m, ubus.StatusInvalidArgument)
			return
		}
	}
	o := &object{id: s.newIDLocked(), path: path, owner: c.id, signature: slices.Clone(sig.Data)}
	attrs := []blob.Attr{ubus.Uint32Attr(ubus.AttrObjID, o.id)}
	if hasSig {
		o.typeID = s.newIDLocked()
		attrs = append(attrs, ubus.Uint32Attr(ubus.AttrObjType, o.typeID))
	}
	s.objects[o.id] = o
	s.sendLocked(c, ubus.Message{Type: ubus.MsgData, Seq: m.Seq, Attrs: attrs})
	s.statusLocked(c, m, ubus.StatusOK)
	if hasPath {
		s.byPath[path] = o
		s.objectEventLocked("ubus.object.add", o)
	}
}

// removeObjectLocked forgets an object, its registrations and subscriptions.
func (s *Server) removeObjectLocked(o *object) {
	delete(s.objects, o.id)
	s.listeners = slices.DeleteFunc(s.listeners, func(r registration) bool { return r.obj == o.id })
	// Subscribers of o learn that it is gone.
	for _, sub := range s.subs[o.id] {
		if so := s.objects[sub]; so != nil {
			if sc := s.clients[so.owner]; sc != nil {
				s.sendLocked(sc, ubus.Message{Type: ubus.MsgUnsubscribe, Attrs: []blob.Attr{
					ubus.Uint32Attr(ubus.AttrObjID, sub),
					ubus.Uint32Attr(ubus.AttrTarget, o.id),
				}})
			}
		}
	}
	delete(s.subs, o.id)
	// o as a subscriber leaves its targets.
	for target, subs := range s.subs {
		if i := slices.Index(subs, o.id); i >= 0 {
			s.subs[target] = slices.Delete(subs, i, i+1)
			if len(s.subs[target]) == 0 {
				s.activeLocked(target, false)
			}
		}
	}
	if o.path != "" && s.byPath[o.path] == o {
		delete(s.byPath, o.path)
		s.objectEventLocked("ubus.object.remove", o)
	}
}

// objectEventLocked sends ubus.object.add/remove {"id", "path"}.
func (s *Server) objectEventLocked(name string, o *object) {
	e := blob.NewEncoder()
	e.Int32("id", int32(o.id))
	e.String("path", o.path)
	data, _ := e.Encode()
	s.eventLocked(0, name, data)
}

// eventLocked delivers an event to every matching listener not owned by the
// sender: INVOKE peer 0, seq from the global event counter, {OBJID, METHOD,
// DATA}.
func (s *Server) eventLocked(sender uint32, name string, data []byte) {
	for _, r := range s.listeners {
		o := s.objects[r.obj]
		if o == nil || o.owner == sender || !match(r.pattern, name) {
			continue
		}
		c := s.clients[o.owner]
		if c == nil {
			continue
		}
		s.eventSeq++
		s.sendLocked(c, ubus.Message{Type: ubus.MsgInvoke, Seq: s.eventSeq, Attrs: []blob.Attr{
			ubus.Uint32Attr(ubus.AttrObjID, r.obj),
			ubus.StringAttr(ubus.AttrMethod, name),
			ubus.DataAttr(data),
		}})
	}
}

// match is ubusd's event pattern match: "*" suffix is a prefix match.
func match(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return pattern == name
}

// invokeLocked handles INVOKE: the event object's methods, or forwarding
// to the owner of the target object.
func (s *Server) invokeLocked(c *client, m ubus.Message) {
	id, _ := m.Uint32(ubus.AttrObjID)
	method, _ := m.String(ubus.AttrMethod)
	data, hasData := m.Attr(ubus.AttrData)
	if id == ubus.ObjectEvent {
		s.statusLocked(c, m, s.eventObjectLocked(c, method, data.Data))
		return
	}
	o := s.objects[id]
	if o == nil || !hasData {
		s.statusLocked(c, m, ubus.StatusNotFound)
		return
	}
	owner := s.clients[o.owner]
	if owner == nil {
		s.statusLocked(c, m, ubus.StatusNotFound)
		return
	}
	// ubusd inserts USER and GROUP after METHOD, before DATA (trace
	// sections 1b, 2b), and sets peer to the caller's client id so that
	// the owner's replies can be routed back.
	attrs := []blob.Attr{
		ubus.Uint32Attr(ubus.AttrObjID, id),
		ubus.StringAttr(ubus.AttrMethod, method),
		ubus.StringAttr(ubus.AttrUser, "root"),
		ubus.StringAttr(ubus.AttrGroup, "root"),
		data,
	}
	if nr, ok := m.Attr(ubus.AttrNoReply); ok {
		attrs = append(attrs, nr)
	}
	s.sendLocked(owner, ubus.Message{Type: ubus.MsgInvoke, Seq: m.Seq, Peer: c.id, Attrs: attrs})
}

// eventObjectLocked runs "send" and "register" on object 1.
func (s *Server) eventObjectLocked(c *client, method string, args []byte) ubus.Status {
	var (
		id, pattern string
		obj         uint32
		payload     []byte
	)
	d := blob.NewDecoder(args)
	for d.Next() {
		switch d.Name() {
		case "id":
			id = d.String()
		case "data":
			payload = d.Bytes()
		case "object":
			obj = uint32(d.Uint())
		case "pattern":
			pattern = d.String()
		}
	}
	if d.Err() != nil {
		return ubus.StatusInvalidArgument
	}
	switch method {
	case "send":
		if id == "" {
			return ubus.StatusInvalidArgument
		}
		if strings.HasPrefix(id, "ubus.") {
			return ubus.StatusPermissionDenied
		}
		s.eventLocked(c.id, id, payload)
		return ubus.StatusOK
	case "register":
		o := s.objects[obj]
		if o == nil || o.owner != c.id || pattern == "" {
			return ubus.StatusInvalidArgument
		}
		s.listeners = append(s.listeners, registration{obj: obj, pattern: pattern})
		return ubus.StatusOK
	}
	return ubus.StatusMethodNotFound
}

// subscribeLocked handles SUBSCRIBE and UNSUBSCRIBE {OBJID, TARGET}.
func (s *Server) subscribeLocked(c *client, m ubus.Message) {
	sub, _ := m.Uint32(ubus.AttrObjID)
	target, _ := m.Uint32(ubus.AttrTarget)
	so, to := s.objects[sub], s.objects[target]
	if so == nil || so.owner != c.id || to == nil {
		s.statusLocked(c, m, ubus.StatusNotFound)
		return
	}
	if to.owner == c.id && m.Type == ubus.MsgSubscribe {
		s.statusLocked(c, m, ubus.StatusInvalidArgument)
		return
	}
	// The owner of the target hears about the first subscriber and the
	// last one leaving (NOTIFY {ACTIVE}).
	subs := s.subs[target]
	i := slices.Index(subs, sub)
	switch {
	case m.Type == ubus.MsgSubscribe && i < 0:
		s.subs[target] = append(subs, sub)
		if len(subs) == 0 {
			s.activeLocked(target, true)
		}
	case m.Type == ubus.MsgUnsubscribe && i >= 0:
		s.subs[target] = slices.Delete(subs, i, i+1)
		if len(s.subs[target]) == 0 {
			s.activeLocked(target, false)
		}
	}
	s.statusLocked(c, m, ubus.StatusOK)
}

// activeLocked tells a target's owner whether it has subscribers:
// NOTIFY {OBJID, ACTIVE}, peer 0.
func (s *Server) activeLocked(target uint32, active bool) {
	o := s.objects[target]
	if o == nil {
		return
	}
	c := s.clients[o.owner]
	if c == nil {
		return
	}
	var a uint8
	if active {
		a = 1
	}
	s.sendLocked(c, ubus.Message{Type: ubus.MsgNotify, Attrs: []blob.Attr{
		ubus.Uint32Attr(ubus.AttrObjID, target),
		ubus.Uint8Attr(ubus.AttrActive, a),
	}})
}

// notifyLocked fans a NOTIFY out to the target's subscribers as INVOKEs.
// Without NO_REPLY the publisher gets a STATUS listing the subscribers; the
// subscribers' own STATUS replies are routed back like INVOKE replies.
func (s *Server) notifyLocked(c *client, m ubus.Message) {
	id, _ := m.Uint32(ubus.AttrObjID)
	o := s.objects[id]
	if o == nil || o.owner != c.id {
		s.statusLocked(c, m, ubus.StatusPermissionDenied)
		return
	}
	method, _ := m.String(ubus.AttrMethod)
	data, _ := m.Attr(ubus.AttrData)
	nr, noReply := m.Attr(ubus.AttrNoReply)
	noReply = noReply && len(nr.Data) == 1 && nr.Data[0] != 0
	var ids []blob.Attr
	for _, sub := range s.subs[id] {
		so := s.objects[sub]
		if so == nil || s.clients[so.owner] == nil {
			continue
		}
		attrs := []blob.Attr{
			ubus.Uint32Attr(ubus.AttrObjID, sub),
			ubus.StringAttr(ubus.AttrMethod, method),
			ubus.DataAttr(data.Data),
		}
		if noReply {
			attrs = append(attrs, ubus.Uint8Attr(ubus.AttrNoReply, 1))
		}
		s.sendLocked(s.clients[so.owner], ubus.Message{Type: ubus.MsgInvoke, Seq: m.Seq, Peer: c.id, Attrs: attrs})
		ids = append(ids, ubus.Uint32Attr(0, sub))
	}
	if !noReply {
		e := blob.NewAttrEncoder()
		for _, a := range ids {
			e.Attr(a)
		}
		list, _ := e.Encode()
		s.statusLocked(c, m, ubus.StatusOK,
			ubus.Uint32Attr(ubus.AttrObjID, id),
			blob.Attr{ID: ubus.AttrSubscribers, Data: list})
	}
}
