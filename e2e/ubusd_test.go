package e2e

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/carpd/carpd/ubus"
	"github.com/carpd/carpd/ubus/json"
	"github.com/carpd/carpd/ubus/ubustest"
)

// fakeUbusd starts ubus/ubustest's ubusd on a socket in the test's
// directory (the namespaces share the file system, so every router's
// carpd can reach it); it stops with the test.
func fakeUbusd(t *testing.T) (string, *ubustest.Server) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ubus.sock")
	srv := ubustest.NewServer()
	if err := srv.Listen(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return sock, srv
}

// eventLog keeps every ubus event a client heard, as its JSON fields with
// "event" set to the event's name.
type eventLog struct {
	mu     sync.Mutex
	events []map[string]any
}

// listenEvents dials ubusd at sock and records the events matching
// pattern until the test ends; the client is returned for calls.
func listenEvents(t *testing.T, ctx context.Context, sock, pattern string) (*ubus.Conn, *eventLog) {
	t.Helper()
	cli, err := ubus.Dial(ctx, sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	l := &eventLog{}
	if _, err := cli.Listen(ctx, pattern, func(ev string, data json.RawMessage) {
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		if m == nil {
			m = map[string]any{}
		}
		m["event"] = ev
		l.mu.Lock()
		l.events = append(l.events, m)
		l.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	return cli, l
}

// all returns the events heard so far.
func (l *eventLog) all() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]any(nil), l.events...)
}
