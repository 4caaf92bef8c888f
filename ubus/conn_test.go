package ubus_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carpd/carpd/ubus"
	"github.com/carpd/carpd/ubus/blob"
	"github.com/carpd/carpd/ubus/json"
	"github.com/carpd/carpd/ubus/ubustest"
)

// newServer starts a fake ubusd, closed when the test ends.
func newServer(t *testing.T) *ubustest.Server {
	t.Helper()
	s := ubustest.NewServer()
	t.Cleanup(func() { s.Close() })
	return s
}

// connect attaches a Conn to the fake ubusd over net.Pipe.
func connect(t *testing.T, s *ubustest.Server, cfg *ubus.Config) *ubus.Conn {
	t.Helper()
	return dial(t, s.Pipe(), cfg)
}

// carpdMethods is an object like the daemon's: status() and
// failover(vhid:int32), whose handlers ignore unknown arguments.
func carpdMethods(failovers *atomic.Int64) []ubus.Method {
	return []ubus.Method{
		{Name: "status", Handler: func(context.Context, json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(`{"state":"MASTER","vhid":5,"master":true,"advbase":1.5}`), nil
		}},
		{Name: "failover", Signature: []ubus.Arg{{Name: "vhid", Type: blob.TypeInt32}},
			Handler: func(_ context.Context, args json.RawMessage) (json.RawMessage, error) {
				var a struct {
					VHID *int `json:"vhid"`
				}
				if err := json.Unmarshal(args, &a); err != nil || a.VHID == nil {
					return nil, ubus.StatusInvalidArgument.Err()
				}
				failovers.Add(int64(*a.VHID))
				return json.RawMessage(`{}`), nil
			}},
	}
}

func TestCallBetweenConns(t *testing.T) {
	checkLeaks(t)
	s := newServer(t)
	srv, cli := connect(t, s, nil), connect(t, s, nil)
	ctx := testContext(t)
	var failovers atomic.Int64
	obj, err := srv.AddObject(ctx, "carpd", carpdMethods(&failovers))
	if err != nil {
		t.Fatal(err)
	}
	if obj.ID() < 1024 || obj.Path() != "carpd" || srv.Object("carpd") != obj {
		t.Errorf("object %#x %q", obj.ID(), obj.Path())
	}

	got, err := cli.Call(ctx, "carpd", "status", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Field order is kept end to end; INT8 comes back as a bool.
	if want := `{"state":"MASTER","vhid":5,"master":true,"advbase":1.5}`; string(got) != want {
		t.Errorf("status: %s, want %s", got, want)
	}

	// rpcd adds ubus_rpc_session; the handler ignores it.
	got, err = cli.Call(ctx, "carpd", "failover", json.RawMessage(`{"ubus_rpc_session":"0123abcd","vhid":7}`))
	if err != nil || string(got) != `{}` || failovers.Load() != 7 {
		t.Errorf("failover: %s, %v, failovers %d", got, err, failovers.Load())
	}

	infos, err := cli.Lookup(ctx, "carp*")
	if err != nil || len(infos) != 1 {
		t.Fatalf("lookup: %v %v", infos, err)
	}
	if i := infos[0]; i.ID != obj.ID() || i.TypeID != obj.TypeID() || len(i.Methods) != 2 ||
		i.Methods[1].Name != "failover" || i.Methods[1].Signature[0] != (ubus.Arg{Name: "vhid", Type: blob.TypeInt32}) {
		t.Errorf("lookup: %+v", i)
	}

	if _, err := srv.AddObject(ctx, "carpd", carpdMethods(&failovers)); !errors.Is(err, &ubus.StatusError{Status: ubus.StatusInvalidArgument}) {
		t.Errorf("second carpd: %v", err)
	}
	if err := cli.Ping(ctx); err != nil {
		t.Error(err)
	}

	if err := obj.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Call(ctx, "carpd", "status", nil); !errors.Is(err, &ubus.StatusError{Status: ubus.StatusNotFound}) {
		t.Errorf("after remove: %v", err)
	}
}

func TestHandlerErrors(t *testing.T) {
	checkLeaks(t)
	s := newServer(t)
	srv, cli := connect(t, s, nil), connect(t, s, nil)
	ctx := testContext(t)
	h := func(res string, err error) ubus.Handler {
		return func(context.Context, json.RawMessage) (json.RawMessage, error) {
			if res == "" {
				return nil, err
			}
			return json.RawMessage(res), err
		}
	}
	_, err := srv.AddObject(ctx, "t", []ubus.Method{
		{Name: "denied", Handler: h("", &ubus.StatusError{Status: ubus.StatusPermissionDenied})},
		{Name: "wrapped", Handler: h("", errorsJoin(ubus.StatusNotSupported.Err()))},
		{Name: "plain", Handler: h("", errors.New("boom"))},
		{Name: "array", Handler: h(`[1,2]`, nil)},
		{Name: "nothing", Handler: h("", nil)},
		{Name: "null", Handler: h("null", nil)},
		{Name: "panic", Handler: func(context.Context, json.RawMessage) (json.RawMessage, error) { panic("handler bug") }},
		{Name: "badarg", Handler: func(_ context.Context, args json.RawMessage) (json.RawMessage, error) {
			var a struct{ N int }
			if err := json.Unmarshal(args, &a); err != nil {
				return nil, &ubus.StatusError{Status: ubus.StatusInvalidArgument}
			}
			return nil, nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, args string
		want         ubus.Status
	}{
		{"denied", "", ubus.StatusPermissionDenied},
		{"wrapped", "", ubus.StatusNotSupported},
		{"plain", "", ubus.StatusUnknownError},
		{"array", "", ubus.StatusUnknownError},
		{"nothing", "", ubus.StatusOK},
		{"null", "", ubus.StatusOK},
		{"panic", "", ubus.StatusUnknownError},
		{"badarg", `{"N":"not a number"}`, ubus.StatusInvalidArgument},
		{"nosuch", "", ubus.StatusMethodNotFound},
	}
	for _, tt := range tests {
		var args json.RawMessage
		if tt.args != "" {
			args = json.RawMessage(tt.args)
		}
		res, err := cli.Call(ctx, "t", tt.method, args)
		if got := ubus.StatusOf(err); got != tt.want {
			t.Errorf("%s: status %v (%v), want %v", tt.method, got, err, tt.want)
		}
		if res != nil {
			t.Errorf("%s: result %s, want none", tt.method, res)
		}
	}
}

// errorsJoin wraps err so that the *StatusError is not at the top.
func errorsJoin(err error) error { return errors.Join(errors.New("context"), err) }

func TestEvents(t *testing.T) {
	checkLeaks(t)
	s := newServer(t)
	a, b := connect(t, s, nil), connect(t, s, nil)
	ctx := testContext(t)
	type event struct{ name, data string }
	got := make(chan event, 10)
	record := func(name string, data json.RawMessage) { got <- event{name, string(data)} }
	if _, err := a.Listen(ctx, "carp.*", record); err != nil {
		t.Fatal(err)
	}
	own := make(chan string, 1)
	if _, err := b.Listen(ctx, "*", func(name string, _ json.RawMessage) { own <- name }); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, "carp.state", json.RawMessage(`{"vhid":5,"state":"MASTER","prev":"BACKUP"}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, "other.event", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, "carp.empty", nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []event{
		{"carp.state", `{"vhid":5,"state":"MASTER","prev":"BACKUP"}`},
		{"carp.empty", `{}`},
	} {
		select {
		case ev := <-got:
			if ev != want {
				t.Errorf("event %+v, want %+v", ev, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event %s", want.name)
		}
	}
	if err := b.Send(ctx, "ubus.object.add", nil); !errors.Is(err, ubus.StatusPermissionDenied.Err()) {
		t.Errorf("ubus.* event: %v", err)
	}
	if err := b.Ping(ctx); err != nil { // flush
		t.Fatal(err)
	}
	select {
	case name := <-own:
		t.Errorf("sender got its own event %s", name)
	default:
	}

	// ubusd's own events reach listeners too.
	if _, err := a.AddObject(ctx, "x", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-own:
		if name != "ubus.object.add" {
			t.Errorf("event %s", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ubus.object.add")
	}
}

// TestSlowListener: a listener that does not keep up loses events, counted,
// and the Conn's reader goes on (calls keep working).
func TestSlowListener(t *testing.T) {
	checkLeaks(t)
	s := newServer(t)
	a := connect(t, s, &ubus.Config{EventQueue: 2})
	b := connect(t, s, nil)
	ctx := testContext(t)
	release := make(chan struct{})
	var delivered atomic.Int64
	l, err := a.Listen(ctx, "flood", func(string, json.RawMessage) {
		<-release
		delivered.Add(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	for i := range n {
		if err := b.Send(ctx, "flood", json.RawMessage(`{"i":`+string(rune('0'+i))+`}`)); err != nil {
			t.Fatal(err)
		}
	}
	// The fake ubusd queues the events for a before the PING reply, so
	// once Ping returns a's reader has dispatched all of them. Ping
	// working at all shows the reader is not stuck behind the listener.
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	dropped := l.Dropped()
	if dropped < n-3 || dropped > n-2 || a.Stats().EventsDropped != dropped {
		t.Errorf("dropped %d (stats %d), want %d or %d", dropped, a.Stats().EventsDropped, n-3, n-2)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for delivered.Load()+int64(dropped) != n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := delivered.Load() + int64(dropped); got != n {
		t.Errorf("delivered %d + dropped %d != %d", delivered.Load(), dropped, n)
	}
	if err := l.Close(ctx); err != nil {
		t.Error(err)
	}
}

// TestSlowHandlers: when every handler is busy and the queue is full, calls
// are dropped and counted, and the reader keeps serving replies.
func TestSlowHandlers(t *testing.T) {
	checkLeaks(t)
	s := newServer(t)
	srv := connect(t, s, &ubus.Config{Handlers: 1, InvokeQueue: 1})
	cli := connect(t, s, nil)
	ctx := testContext(t)
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	_, err := srv.AddObject(ctx, "slow", []ubus.Method{{Name: "wait", Handler: func(ctx context.Context, _ json.RawMessage) (json.RawMessage, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	call := func() {
		defer wg.Done()
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := cli.Call(cctx, "slow", "wait", nil)
		errs <- err
	}
	wg.Add(1)
	go call() // occupies the handler
	<-started
	wg.Add(2)
	go call() // waits in the queue
	go call() // dropped
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().InvokesDropped == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := srv.Ping(ctx); err != nil {
		t.Errorf("ping while handlers are busy: %v", err)
	}
	close(release)
	wg.Wait()
	close(errs)
	var ok, timedOut int
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, context.DeadlineExceeded):
			timedOut++
		default:
			t.Error(err)
		}
	}
	if ok != 2 || timedOut != 1 || srv.Stats().InvokesDropped != 1 {
		t.Errorf("ok %d, timed out %d, dropped %d; want 2, 1, 1", ok, timedOut, srv.Stats().InvokesDropped)
	}
}

func TestSubscribeNotify(t *testing.T) {
	checkLeaks(t)
	s := newServer(t)
	pub, sub := connect(t, s, nil), connect(t, s, nil)
	ctx := testContext(t)
	obj, err := pub.AddObject(ctx, "carpd", nil)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Subscribed() {
		t.Error("subscribed before anyone subscribed")
	}
	type note struct{ typ, data string }
	got := make(chan note, 1)
	subn, err := sub.Subscribe(ctx, "carpd", func(typ string, data json.RawMessage) { got <- note{typ, string(data)} })
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "subscriber presence", obj.Subscribed)
	if err := obj.Notify(ctx, "state", json.RawMessage(`{"vhid":5,"state":"BACKUP"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if want := (note{"state", `{"vhid":5,"state":"BACKUP"}`}); n != want {
			t.Errorf("notification %+v, want %+v", n, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
	if err := subn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no subscribers", func() bool { return !obj.Subscribed() })
	if _, err := sub.Subscribe(ctx, "nosuch", nil); !errors.Is(err, ubus.StatusNotFound.Err()) {
		t.Errorf("subscribe nosuch: %v", err)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConnLost: when ubusd goes away, pending and later requests fail with
// an error wrapping net.ErrClosed, and Done is closed.
func TestConnLost(t *testing.T) {
	checkLeaks(t)
	s := newServer(t)
	srv, cli := connect(t, s, nil), connect(t, s, nil)
	ctx := testContext(t)
	entered := make(chan struct{})
	if _, err := srv.AddObject(ctx, "hang", []ubus.Method{{Name: "x", Handler: func(ctx context.Context, _ json.RawMessage) (json.RawMessage, error) {
		close(entered)
		<-ctx.Done() // cancelled when srv's connection ends
		return nil, ctx.Err()
	}}}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := cli.Call(ctx, "hang", "x", nil)
		errc <- err
	}()
	<-entered
	s.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("pending call: %v", err)
	}
	for _, c := range []*ubus.Conn{srv, cli} {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed")
		}
		if !errors.Is(c.Err(), net.ErrClosed) {
			t.Errorf("Err %v", c.Err())
		}
		if err := c.Send(ctx, "x", nil); !errors.Is(err, net.ErrClosed) {
			t.Errorf("send after loss: %v", err)
		}
	}
}

// TestCallTimeout: a lost reply is the caller's context's business, and a
// reply arriving later is counted, not misdelivered.
func TestCallTimeout(t *testing.T) {
	checkLeaks(t)
	s := ubustest.NewServer()
	var drop atomic.Bool
	s.Hook = func(_ uint32, m *ubus.Message) bool {
		return !(drop.Load() && m.Type == ubus.MsgStatus)
	}
	t.Cleanup(func() { s.Close() })
	srv, cli := connect(t, s, nil), connect(t, s, nil)
	ctx := testContext(t)
	if _, err := srv.AddObject(ctx, "t", []ubus.Method{{Name: "x", Handler: func(context.Context, json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{"a":1}`), nil
	}}}); err != nil {
		t.Fatal(err)
	}
	drop.Store(true) // the owner's STATUS replies vanish
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := cli.Call(cctx, "t", "x", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("call: %v", err)
	}
	drop.Store(false)
	if got, err := cli.Call(ctx, "t", "x", nil); err != nil || string(got) != `{"a":1}` {
		t.Errorf("second call: %s %v", got, err)
	}
}

// TestMalformedInput: a broken stream ends the Conn instead of being
// guessed at.
func TestMalformedInput(t *testing.T) {
	checkLeaks(t)
	hello := mustMarshal(t, ubus.Message{Type: ubus.MsgHello, Peer: 0x1234})
	for name, junk := range map[string][]byte{
		"version 1":    {1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4},
		"short blob":   {0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2},
		"huge blob":    {0, 2, 0, 1, 0, 0, 0, 0, 0, 0x20, 0, 0},
		"bad attr":     {0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 8, 3, 0, 0, 5},
		"short string": {0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 12, 2, 0, 0, 8, 'a', 'b', 'c', 'd'},
	} {
		t.Run(name, func(t *testing.T) {
			nc, wait := replay(t, []step{{send: hello}, {send: junk}})
			c := dial(t, nc, nil)
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("Conn survived malformed input")
			}
			if err := c.Err(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Err %v", err)
			}
		})
	}
}

func TestNewConnErrors(t *testing.T) {
	checkLeaks(t)
	t.Run("not hello", func(t *testing.T) {
		nc, wait := replay(t, []step{{send: mustMarshal(t, ubus.Message{Type: ubus.MsgStatus})}})
		if _, err := ubus.NewConn(testContext(t), nc, nil); err == nil || !strings.Contains(err.Error(), "HELLO") {
			t.Errorf("err %v", err)
		}
		_ = wait()
	})
	t.Run("cancelled", func(t *testing.T) {
		nc, _ := replay(t, nil) // never says HELLO
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := ubus.NewConn(ctx, nc, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		nc, _ := replay(t, nil)
		if _, err := ubus.NewConn(context.Background(), nc, &ubus.Config{DialTimeout: 50 * time.Millisecond}); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("no socket", func(t *testing.T) {
		if _, err := ubus.Dial(testContext(t), filepath.Join(t.TempDir(), "nope.sock"), nil); err == nil {
			t.Error("dial succeeded")
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func mustMarshal(t *testing.T, m ubus.Message) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestClientReconnect: the Client registers its object on connect, keeps
// retrying while ubusd is down, and registers again when ubusd is back.
func TestClientReconnect(t *testing.T) {
	checkLeaks(t)
	sock := filepath.Join(t.TempDir(), "ubus.sock")
	s1 := ubustest.NewServer()
	if err := s1.Listen(sock); err != nil {
		t.Fatal(err)
	}
	var setups atomic.Int32
	var failovers atomic.Int64
	cfg := &ubus.Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	cl := ubus.NewClient(sock, cfg, func(ctx context.Context, c *ubus.Conn) error {
		setups.Add(1)
		if _, err := c.AddObject(ctx, "carpd", carpdMethods(&failovers)); err != nil {
			return err
		}
		_, err := c.Listen(ctx, "carp.*", func(string, json.RawMessage) {})
		return err
	})
	defer cl.Close()
	ctx := testContext(t)
	waitFor(t, "carpd on the first ubusd", func() bool { return slices.Contains(s1.Objects(), "carpd") && cl.Conn() != nil })
	if err := cl.Send(ctx, "carp.test", json.RawMessage(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}

	s1.Close() // ubusd stops
	waitFor(t, "disconnect", func() bool { return cl.Conn() == nil })
	if err := cl.Send(ctx, "carp.test", nil); !errors.Is(err, ubus.ErrNotConnected) {
		t.Errorf("send while down: %v", err)
	}
	if _, err := cl.Call(ctx, "carpd", "status", nil); !errors.Is(err, ubus.ErrNotConnected) {
		t.Errorf("call while down: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // a few failed dials

	s2 := ubustest.NewServer() // ubusd restarts, with new ids
	defer s2.Close()
	if err := s2.Listen(sock); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "carpd on the second ubusd", func() bool { return slices.Contains(s2.Objects(), "carpd") && cl.Conn() != nil })
	if n := setups.Load(); n != 2 {
		t.Errorf("setup ran %d times, want 2", n)
	}
	other := dial(t, s2.Pipe(), nil)
	if _, err := other.Call(ctx, "carpd", "failover", json.RawMessage(`{"vhid":3}`)); err != nil || failovers.Load() != 3 {
		t.Errorf("call after reconnect: %v (failovers %d)", err, failovers.Load())
	}
	sub, err := other.Subscribe(ctx, "carpd", func(string, json.RawMessage) {})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "subscriber", func() bool { return cl.Conn().Object("carpd").Subscribed() })
	if err := cl.Notify(ctx, "carpd", "state", json.RawMessage(`{}`)); err != nil {
		t.Error(err)
	}
	if err := cl.Notify(ctx, "nosuch", "state", nil); !errors.Is(err, ubus.StatusNotFound.Err()) {
		t.Errorf("notify on unknown object: %v", err)
	}
	_ = sub.Close(ctx)
	if err := cl.Close(); err != nil {
		t.Error(err)
	}
	if cl.Conn() != nil {
		t.Error("connection after Close")
	}
}

// TestClientWithoutUbusd: NewClient and Close never block, and calls fail
// fast, when there is no ubusd at all.
func TestClientWithoutUbusd(t *testing.T) {
	checkLeaks(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	cfg := &ubus.Config{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Logger: newTestLogger(&mu, &buf)}
	start := time.Now()
	cl := ubus.NewClient(filepath.Join(t.TempDir(), "missing.sock"), cfg, nil)
	if err := cl.Send(testContext(t), "x", nil); !errors.Is(err, ubus.ErrNotConnected) {
		t.Errorf("send: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	cl.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "op=connect") || !strings.Contains(buf.String(), "err=") {
		t.Errorf("log lacks op/err keys:\n%s", buf.String())
	}
}

// TestClientWarnsOncePerOutage: of the failed connects of one outage the
// first is a warning and the others debug lines, so that a router without
// ubusd does not log a warning every few seconds.
func TestClientWarnsOncePerOutage(t *testing.T) {
	checkLeaks(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	cfg := &ubus.Config{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Logger: newTestLogger(&mu, &buf)}
	cl := ubus.NewClient(filepath.Join(t.TempDir(), "missing.sock"), cfg, nil)
	var levels []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		levels = levels[:0]
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, `msg="ubus connect failed, retrying"`) {
				levels = append(levels, strings.Fields(l)[1])
			}
		}
		mu.Unlock()
		if len(levels) >= 4 {
			break
		}
	}
	cl.Close()
	if len(levels) < 4 {
		t.Fatalf("%d failed connects logged in 5 s, want at least 4", len(levels))
	}
	if levels[0] != "level=WARN" {
		t.Errorf("first failed connect logged at %s, want level=WARN", levels[0])
	}
	for i, l := range levels[1:] {
		if l != "level=DEBUG" {
			t.Errorf("failed connect %d logged at %s, want level=DEBUG", i+2, l)
		}
	}
}
