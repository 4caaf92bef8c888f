package ubus_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/carpd/carpd/ubus"
	"github.com/carpd/carpd/ubus/blob"
	"github.com/carpd/carpd/ubus/json"
	"github.com/google/go-cmp/cmp"
)

// These tests run a Conn against ubusd's side of the real traces: a peer
// on net.Pipe writes the captured bytes ubusd sent and checks that the Conn
// writes exactly the captured bytes libubus sent. This is the main path;
// the fake ubusd (ubustest) covers the rest.

// step is one message of a replayed conversation.
type step struct {
	send   []byte // peer → Conn
	expect []byte // Conn → peer, byte for byte
	line   int    // trace line, for messages
}

// sectionSteps turns a trace section into steps: what the traced client
// received is sent to the Conn, what it sent is expected from the Conn.
func sectionSteps(t *testing.T, section string) []step {
	t.Helper()
	var steps []step
	for _, m := range ubus.TraceMessages(t) {
		if m.Section != section {
			continue
		}
		if m.Dir == "RECV" {
			steps = append(steps, step{send: m.Bytes, line: m.Line})
		} else {
			steps = append(steps, step{expect: m.Bytes, line: m.Line})
		}
	}
	if len(steps) == 0 {
		t.Fatalf("no messages in trace section %s", section)
	}
	return steps
}

// replay starts a peer playing steps on a net.Pipe and returns the Conn's
// end and a function that waits for the peer and returns its verdict.
func replay(t *testing.T, steps []step) (net.Conn, func() error) {
	t.Helper()
	cc, pc := net.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- playSteps(pc, steps)
	}()
	t.Cleanup(func() { pc.Close(); cc.Close() })
	return cc, func() error {
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			pc.Close()
			return errors.New("peer did not finish")
		}
	}
}

// playSteps is the peer's side. It never calls t.Fatal: it runs on its own
// goroutine.
func playSteps(nc net.Conn, steps []step) error {
	for i, s := range steps {
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		if s.send != nil {
			if _, err := nc.Write(s.send); err != nil {
				return fmt.Errorf("step %d (trace line %d): write: %w", i, s.line, err)
			}
			continue
		}
		got, err := readRaw(nc)
		if err != nil {
			return fmt.Errorf("step %d (trace line %d): read: %w", i, s.line, err)
		}
		if !bytes.Equal(got, s.expect) {
			return fmt.Errorf("step %d (trace line %d): Conn sent\n %x\nwant\n %x", i, s.line, got, s.expect)
		}
	}
	return nil
}

// readRaw reads one message's bytes as they are on the wire.
func readRaw(r io.Reader) ([]byte, error) {
	buf := make([]byte, ubus.MinMessageLen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(buf[ubus.HeaderLen:]) & blob.MaxLen)
	if n < blob.HeaderLen || n > ubus.MaxBlobLen {
		return nil, fmt.Errorf("blob length %d", n)
	}
	rest := make([]byte, n-blob.HeaderLen)
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, err
	}
	return append(buf, rest...), nil
}

// dial starts a Conn on nc.
func dial(t *testing.T, nc net.Conn, cfg *ubus.Config) *ubus.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := ubus.NewConn(ctx, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestReplayCall: `ubus call` sections 1–4: LOOKUP then INVOKE, byte-exact,
// and the replies decoded.
func TestReplayCall(t *testing.T) {
	tests := []struct {
		section, path, method, args string
		clientID                    uint32
		want                        string
		wantErr                     ubus.Status
	}{
		{section: "1", path: "test", method: "count", args: `{"to":5,"string":"0 1 2 3 4 "}`,
			clientID: 0x9e478a39, want: `{"rc":0}`},
		{section: "2", path: "test", method: "hello", args: `{"id":1,"msg":"hi"}`,
			clientID: 0x7f666b9a, want: `{"message":"test received a message: hi"}`},
		{section: "3", path: "test", method: "nosuchmethod",
			clientID: 0x7e3d5631, wantErr: ubus.StatusMethodNotFound},
		{section: "4", path: "nosuch", method: "foo",
			clientID: 0xfe829ae9, wantErr: ubus.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run("section "+tt.section, func(t *testing.T) {
			checkLeaks(t)
			nc, wait := replay(t, sectionSteps(t, tt.section))
			c := dial(t, nc, nil)
			if c.ClientID() != tt.clientID {
				t.Errorf("client id %#x, want %#x", c.ClientID(), tt.clientID)
			}
			var args json.RawMessage
			if tt.args != "" {
				args = json.RawMessage(tt.args)
			}
			got, err := c.Call(testContext(t), tt.path, tt.method, args)
			if tt.wantErr != ubus.StatusOK {
				if !errors.Is(err, &ubus.StatusError{Status: tt.wantErr}) {
					t.Errorf("err %v, want status %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if string(got) != tt.want {
				t.Errorf("result %s, want %s", got, tt.want)
			}
			if err := wait(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestReplayLookupAll: `ubus list` (section 5), with the signature decoded.
func TestReplayLookupAll(t *testing.T) {
	checkLeaks(t)
	nc, wait := replay(t, sectionSteps(t, "5"))
	c := dial(t, nc, nil)
	infos, err := c.Lookup(testContext(t), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []ubus.ObjectInfo{{
		Path: "test", ID: 0x7a8de9ec, TypeID: 0x1d52c720,
		Methods: []ubus.Method{
			{Name: "hello", Signature: []ubus.Arg{{"id", blob.TypeInt32}, {"msg", blob.TypeString}}},
			{Name: "watch", Signature: []ubus.Arg{{"id", blob.TypeInt32}, {"counter", blob.TypeInt32}}},
			{Name: "count", Signature: []ubus.Arg{{"to", blob.TypeInt32}, {"string", blob.TypeString}}},
		},
	}}
	if diff := cmp.Diff(want, infos, cmp.Comparer(func(a, b ubus.Handler) bool { return a == nil && b == nil })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := wait(); err != nil {
		t.Error(err)
	}
}

// TestReplaySend: `ubus send test.event '{"a":1}'` (section 8).
func TestReplaySend(t *testing.T) {
	checkLeaks(t)
	nc, wait := replay(t, sectionSteps(t, "8"))
	c := dial(t, nc, nil)
	if err := c.Send(testContext(t), "test.event", json.RawMessage(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Error(err)
	}
}

// TestReplayListen: `ubus listen test.event` (section 7): ADD_OBJECT and
// "register" byte-exact, then the event delivered to the callback. libubus
// acknowledges events with a STATUS that ubusd discards
// (docs/ubus-protocol.md#exchanges); the Conn skips it, so the last message
// of the section is not expected.
func TestReplayListen(t *testing.T) {
	checkLeaks(t)
	steps := sectionSteps(t, "7")
	last := steps[len(steps)-1]
	if last.expect == nil {
		t.Fatal("section 7 should end with the listener's STATUS")
	}
	nc, wait := replay(t, steps[:len(steps)-1])
	c := dial(t, nc, nil)
	type event struct{ name, data string }
	got := make(chan event, 1)
	l, err := c.Listen(testContext(t), "test.event", func(name string, data json.RawMessage) {
		got <- event{name, string(data)}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if want := (event{"test.event", `{"a":1}`}); ev != want {
			t.Errorf("event %+v, want %+v", ev, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	if l.Dropped() != 0 {
		t.Errorf("dropped %d events", l.Dropped())
	}
	if err := wait(); err != nil {
		t.Error(err)
	}
}

// TestReplayServe: an object registered with the signature of section 6
// serves the calls of sections 1b, 2b and 3 (owner view): the INVOKEs
// ubusd forwarded, byte for byte, and the DATA/STATUS replies libubus sent,
// byte for byte. The object id in the ADD_OBJECT reply is the one those
// sections used (0x26b57a63, type 0x2898864b, as the LOOKUP of section 1
// shows); section 6 itself was captured in another ubusd run.
func TestReplayServe(t *testing.T) {
	checkLeaks(t)
	msgs := ubus.TraceMessages(t)
	find := func(section, dir, typ string, n int) step {
		m := ubus.TraceFind(t, msgs, section, dir, typ, n)
		if dir == "RECV" {
			return step{send: m.Bytes, line: m.Line}
		}
		return step{expect: m.Bytes, line: m.Line}
	}
	addReply, err := ubus.Message{Type: ubus.MsgData, Seq: 1, Attrs: []blob.Attr{
		ubus.Uint32Attr(ubus.AttrObjID, 0x26b57a63),
		ubus.Uint32Attr(ubus.AttrObjType, 0x2898864b),
	}}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	steps := []step{
		find("6", "RECV", "HELLO", 0),
		find("6", "SENT", "ADD_OBJECT", 0),
		{send: addReply},
		find("6", "RECV", "STATUS", 0),
		find("1b", "RECV", "INVOKE", 0),
		find("1b", "SENT", "DATA", 0),
		find("1b", "SENT", "STATUS", 0),
		find("2b", "RECV", "INVOKE", 0),
		find("2b", "SENT", "DATA", 0),
		find("2b", "SENT", "STATUS", 0),
		find("3-owner", "RECV", "INVOKE", 0),
		find("3-owner", "SENT", "STATUS", 0),
	}
	nc, wait := replay(t, steps)
	c := dial(t, nc, nil)

	// The handlers of libubus' examples/server, as far as the replies go.
	gotArgs := make(chan string, 2)
	methods := []ubus.Method{
		{Name: "hello", Signature: []ubus.Arg{{"id", blob.TypeInt32}, {"msg", blob.TypeString}},
			Handler: func(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
				gotArgs <- string(args)
				var a struct{ Msg string }
				if err := json.Unmarshal(args, &a); err != nil {
					return nil, err
				}
				return json.Marshal(map[string]string{"message": "test received a message: " + a.Msg})
			}},
		{Name: "watch", Signature: []ubus.Arg{{"id", blob.TypeInt32}, {"counter", blob.TypeInt32}},
			Handler: func(context.Context, json.RawMessage) (json.RawMessage, error) { return nil, nil }},
		{Name: "count", Signature: []ubus.Arg{{"to", blob.TypeInt32}, {"string", blob.TypeString}},
			Handler: func(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
				gotArgs <- string(args)
				if r, ok := ubus.RequestFromContext(ctx); !ok || r.User != "root" || r.Peer != 0x9e478a39 || r.Object != "test" {
					return nil, fmt.Errorf("request %+v", r)
				}
				return json.RawMessage(`{"rc":0}`), nil
			}},
	}
	obj, err := c.AddObject(testContext(t), "test", methods)
	if err != nil {
		t.Fatal(err)
	}
	if obj.ID() != 0x26b57a63 || obj.TypeID() != 0x2898864b {
		t.Errorf("object %#x type %#x", obj.ID(), obj.TypeID())
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`{"to":5,"string":"0 1 2 3 4 "}`, `{"id":1,"msg":"hi"}`} {
		if got := <-gotArgs; got != want {
			t.Errorf("handler args %s, want %s", got, want)
		}
	}
}
