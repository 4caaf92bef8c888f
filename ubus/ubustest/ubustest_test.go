package ubustest_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/carpd/carpd/ubus"
	"github.com/carpd/carpd/ubus/blob"
	"github.com/carpd/carpd/ubus/json"
	"github.com/carpd/carpd/ubus/ubustest"
)

// rawClient talks to the fake with hand-built messages, to pin down the
// replies a real ubusd gives (docs/ubus-protocol.md#exchanges).
type rawClient struct {
	t  *testing.T
	nc net.Conn
	id uint32
}

func newRaw(t *testing.T, nc net.Conn) *rawClient {
	t.Helper()
	c := &rawClient{t: t, nc: nc}
	t.Cleanup(func() { nc.Close() })
	hello := c.read()
	if hello.Type != ubus.MsgHello || hello.Peer < 1024 || len(hello.Attrs) != 0 {
		t.Fatalf("HELLO: %+v", hello)
	}
	c.id = hello.Peer
	return c
}

func (c *rawClient) write(m ubus.Message) {
	c.t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		c.t.Fatal(err)
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) read() ubus.Message {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := ubus.ReadMessage(c.nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// status reads messages up to a STATUS and returns its code and the DATA
// replies before it.
func (c *rawClient) status(seq uint16) (ubus.Status, []ubus.Message) {
	c.t.Helper()
	var data []ubus.Message
	for {
		m := c.read()
		if m.Seq != seq {
			c.t.Fatalf("seq %d, want %d: %+v", m.Seq, seq, m)
		}
		switch m.Type {
		case ubus.MsgData:
			data = append(data, m)
		case ubus.MsgStatus:
			st, ok := m.Status()
			if !ok {
				c.t.Fatal("STATUS without status")
			}
			return st, data
		default:
			c.t.Fatalf("unexpected %v", m.Type)
		}
	}
}

func TestServerProtocol(t *testing.T) {
	s := ubustest.NewServer()
	defer s.Close()
	c := newRaw(t, s.Pipe())

	// PING is echoed as DATA, then STATUS 0.
	c.write(ubus.Message{Type: ubus.MsgPing, Seq: 1, Attrs: []blob.Attr{ubus.StringAttr(ubus.AttrObjPath, "x")}})
	if st, data := c.status(1); st != ubus.StatusOK || len(data) != 1 {
		t.Errorf("ping: %v %v", st, data)
	}
	// Unknown path: STATUS 4 only.
	c.write(ubus.Message{Type: ubus.MsgLookup, Seq: 2, Attrs: []blob.Attr{ubus.StringAttr(ubus.AttrObjPath, "nosuch")}})
	if st, data := c.status(2); st != ubus.StatusNotFound || len(data) != 0 {
		t.Errorf("lookup: %v %v", st, data)
	}
	// ADD_OBJECT with a signature: DATA {OBJID, OBJTYPE}, STATUS 0.
	sig := blob.NewEncoder()
	sig.Table("status", func(*blob.Encoder) error { return nil })
	sigb, _ := sig.Encode()
	c.write(ubus.Message{Type: ubus.MsgAddObject, Seq: 3, Attrs: []blob.Attr{
		ubus.StringAttr(ubus.AttrObjPath, "carpd"), {ID: ubus.AttrSignature, Data: sigb}}})
	st, data := c.status(3)
	if st != ubus.StatusOK || len(data) != 1 {
		t.Fatalf("add: %v %v", st, data)
	}
	id, ok1 := data[0].Uint32(ubus.AttrObjID)
	_, ok2 := data[0].Uint32(ubus.AttrObjType)
	if !ok1 || !ok2 || id < 1024 {
		t.Errorf("add reply %+v", data[0])
	}
	if got := s.Objects(); len(got) != 1 || got[0] != "carpd" {
		t.Errorf("objects %v", got)
	}
	// Lookup all lists it with the signature as sent.
	c.write(ubus.Message{Type: ubus.MsgLookup, Seq: 4})
	if st, data := c.status(4); st != ubus.StatusOK || len(data) != 1 {
		t.Errorf("list: %v %v", st, data)
	} else if a, _ := data[0].Attr(ubus.AttrSignature); !bytes.Equal(a.Data, sigb) {
		t.Errorf("signature %x", a.Data)
	}
	// Calling our own object comes back to us as INVOKE with peer = our
	// id and USER/GROUP added; our STATUS goes back with peer = object.
	c.write(ubus.Message{Type: ubus.MsgInvoke, Seq: 5, Peer: id, Attrs: []blob.Attr{
		ubus.Uint32Attr(ubus.AttrObjID, id), ubus.StringAttr(ubus.AttrMethod, "status"), ubus.DataAttr(nil)}})
	inv := c.read()
	user, _ := inv.String(ubus.AttrUser)
	if inv.Type != ubus.MsgInvoke || inv.Peer != c.id || inv.Seq != 5 || user != "root" {
		t.Fatalf("forwarded %+v", inv)
	}
	c.write(ubus.Message{Type: ubus.MsgStatus, Seq: 5, Peer: c.id, Attrs: []blob.Attr{
		ubus.Uint32Attr(ubus.AttrStatus, 0), ubus.Uint32Attr(ubus.AttrObjID, id)}})
	if r := c.read(); r.Type != ubus.MsgStatus || r.Peer != id {
		t.Errorf("routed reply %+v", r)
	}
	// An unknown message type is an invalid command.
	c.write(ubus.Message{Type: ubus.MsgMonitor, Seq: 6})
	if st, _ := c.status(6); st != ubus.StatusInvalidCommand {
		t.Errorf("monitor: %v", st)
	}
	// REMOVE_OBJECT, twice.
	for i, want := range []ubus.Status{ubus.StatusOK, ubus.StatusNotFound} {
		seq := uint16(7 + i)
		c.write(ubus.Message{Type: ubus.MsgRemoveObject, Seq: seq, Attrs: []blob.Attr{ubus.Uint32Attr(ubus.AttrObjID, id)}})
		if st, _ := c.status(seq); st != want {
			t.Errorf("remove #%d: %v", i, st)
		}
	}
}

// TestServerRestart: a Server on a Unix socket can be closed and another
// started on the same path; clients see the disconnect.
func TestServerRestart(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ubus.sock")
	for range 2 {
		s := ubustest.NewServer()
		if err := s.Listen(sock); err != nil {
			t.Fatal(err)
		}
		nc, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		c := newRaw(t, nc)
		deadline := time.Now().Add(5 * time.Second)
		for s.Clients() != 1 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		s.Disconnect(c.id)
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := ubus.ReadMessage(nc); !errors.Is(err, io.EOF) {
			t.Errorf("after Disconnect: %v", err)
		}
		s.Close()
		if err := s.Listen(sock); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Listen after Close: %v", err)
		}
	}
}

// TestServerEvents: events reach matching listeners of other clients, and
// PERMISSION_DENIED for ubus.* names.
func TestServerEvents(t *testing.T) {
	s := ubustest.NewServer()
	defer s.Close()
	a, b := newRaw(t, s.Pipe()), newRaw(t, s.Pipe())
	a.write(ubus.Message{Type: ubus.MsgAddObject, Seq: 1})
	_, data := a.status(1)
	obj, _ := data[0].Uint32(ubus.AttrObjID)
	reg := blob.NewEncoder()
	reg.Int32("object", int32(obj))
	reg.String("pattern", "carp.*")
	regb, _ := reg.Encode()
	a.write(ubus.Message{Type: ubus.MsgInvoke, Seq: 2, Peer: ubus.ObjectEvent, Attrs: []blob.Attr{
		ubus.Uint32Attr(ubus.AttrObjID, ubus.ObjectEvent), ubus.StringAttr(ubus.AttrMethod, "register"), ubus.DataAttr(regb)}})
	if st, _ := a.status(2); st != ubus.StatusOK {
		t.Fatalf("register: %v", st)
	}
	send := func(seq uint16, name string) ubus.Status {
		e := blob.NewEncoder()
		e.String("id", name)
		e.JSON("data", json.RawMessage(`{"n":1}`))
		eb, _ := e.Encode()
		b.write(ubus.Message{Type: ubus.MsgInvoke, Seq: seq, Peer: ubus.ObjectEvent, Attrs: []blob.Attr{
			ubus.Uint32Attr(ubus.AttrObjID, ubus.ObjectEvent), ubus.StringAttr(ubus.AttrMethod, "send"), ubus.DataAttr(eb)}})
		st, _ := b.status(seq)
		return st
	}
	if st := send(1, "carp.state"); st != ubus.StatusOK {
		t.Fatalf("send: %v", st)
	}
	ev := a.read()
	name, _ := ev.String(ubus.AttrMethod)
	id, _ := ev.Uint32(ubus.AttrObjID)
	d, _ := ev.Attr(ubus.AttrData)
	j, _ := blob.ToJSON(d.Data)
	if ev.Type != ubus.MsgInvoke || ev.Peer != 0 || name != "carp.state" || id != obj || string(j) != `{"n":1}` {
		t.Errorf("event %+v %s", ev, j)
	}
	if st := send(2, "ubus.object.add"); st != ubus.StatusPermissionDenied {
		t.Errorf("ubus.* event: %v", st)
	}
}
