package ubus

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/carpd/carpd/ubus/json"
)

// Client keeps a connection to ubusd up: it dials in the background with
// exponential backoff, runs setup on every new connection (to add objects
// and listeners again, as libubus' reconnect does, since ubusd forgets them
// and hands out new ids), and starts over when the connection is lost.
//
// While there is no connection, its methods fail fast with ErrNotConnected
// instead of queueing: the daemon's callers (state-change events, LuCI
// polls) are better served by a prompt error than by a stale delivery.
// NewClient never blocks; without ubusd the Client just keeps retrying.
type Client struct {
	path  string
	cfg   Config
	setup func(context.Context, *Conn) error

	ctx    context.Context    // cancelled by Close
	cancel context.CancelFunc // cancels ctx
	done   chan struct{}      // closed when run returns

	mu   sync.Mutex // guards conn
	conn *Conn      // the set-up connection, nil while down
}

// NewClient starts a Client for ubusd's socket at path (DefaultSocket if
// empty). setup runs on each new connection before the Client hands it out;
// if it fails the connection is closed and retried after the backoff. Its
// context is for the setup calls only: it is cancelled by Close and after
// 30 s. cfg.Logger gets a line per connect and loss, a warning for the first
// failed attempt of an outage and debug lines for the rest (keys "op",
// "err"); the logger sits in Config so that Dial and NewClient share it.
func NewClient(path string, cfg *Config, setup func(ctx context.Context, c *Conn) error) *Client {
	cl := &Client{path: path, cfg: cfg.withDefaults(), setup: setup, done: make(chan struct{})}
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	go cl.run()
	return cl
}

// setupTimeout bounds the setup function, so that a ubusd that accepts but
// never answers does not stall the reconnect loop.
const setupTimeout = 30 * time.Second

// run is the reconnect loop.
func (cl *Client) run() {
	defer close(cl.done)
	log := cl.cfg.Logger
	backoff := cl.cfg.MinBackoff
	failures := 0 // consecutive failed attempts
	for {
		c, err := cl.connect()
		if err != nil {
			if cl.ctx.Err() != nil {
				return
			}
			// Warn once per outage; a router without ubusd would
			// otherwise log every few seconds forever.
			logf := log.Debug
			if failures++; failures == 1 {
				logf = log.Warn
			}
			logf("ubus connect failed, retrying", "op", "connect", "err", err, "retry", backoff)
		} else {
			failures = 0
			log.Info("ubus connected", "op", "connect", "client", c.ClientID())
			cl.setConn(c)
			up := time.Now()
			select {
			case <-c.Done():
				log.Info("ubus disconnected, reconnecting", "op", "connect", "err", c.Err())
			case <-cl.ctx.Done():
			}
			cl.setConn(nil)
			c.Close()
			if cl.ctx.Err() != nil {
				return
			}
			if time.Since(up) >= cl.cfg.MaxBackoff {
				backoff = cl.cfg.MinBackoff // it was up a while: not a crash loop
			}
		}
		if !cl.sleep(jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, cl.cfg.MaxBackoff)
	}
}

// connect dials and runs setup.
func (cl *Client) connect() (*Conn, error) {
	c, err := Dial(cl.ctx, cl.path, &cl.cfg)
	if err != nil {
		return nil, err
	}
	if cl.setup != nil {
		ctx, cancel := context.WithTimeout(cl.ctx, setupTimeout)
		err := cl.setup(ctx, c)
		cancel()
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// sleep waits d, or returns false if the Client is closed first.
func (cl *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-cl.ctx.Done():
		return false
	}
}

// jitter spreads d by ±20 % so that many clients restarted together (after
// ubusd restarts) do not reconnect in lockstep.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (cl *Client) setConn(c *Conn) {
	cl.mu.Lock()
	cl.conn = c
	cl.mu.Unlock()
}

// Conn returns the current connection, or nil while disconnected. It may
// fail at any moment; its methods then return errors wrapping net.ErrClosed.
func (cl *Client) Conn() *Conn {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.conn
}

// current returns the connection or ErrNotConnected.
func (cl *Client) current() (*Conn, error) {
	if c := cl.Conn(); c != nil {
		return c, nil
	}
	return nil, ErrNotConnected
}

// Call is Conn.Call on the current connection.
func (cl *Client) Call(ctx context.Context, path, method string, args json.RawMessage) (json.RawMessage, error) {
	c, err := cl.current()
	if err != nil {
		return nil, err
	}
	return c.Call(ctx, path, method, args)
}

// Send is Conn.Send on the current connection.
func (cl *Client) Send(ctx context.Context, event string, data json.RawMessage) error {
	c, err := cl.current()
	if err != nil {
		return err
	}
	return c.Send(ctx, event, data)
}

// Notify publishes on our object at path as registered by setup on the
// current connection; see Object.Notify. Without that object it returns a
// *StatusError with StatusNotFound.
func (cl *Client) Notify(ctx context.Context, path, typ string, data json.RawMessage) error {
	c, err := cl.current()
	if err != nil {
		return err
	}
	o := c.Object(path)
	if o == nil {
		return StatusNotFound.Err()
	}
	return o.Notify(ctx, typ, data)
}

// Close stops reconnecting, closes the current connection and waits for
// every goroutine the Client started.
func (cl *Client) Close() error {
	cl.cancel()
	<-cl.done
	return nil
}
