package daemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/asyncq"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/track"
	"github.com/carpd/carpd/ubus"
	"github.com/carpd/carpd/ubus/blob"
	"github.com/carpd/carpd/ubus/json"
)

// ubusObject is the name of carpd's ubus object.
const ubusObject = "carpd"

// ubusBridge publishes the daemon on ubus: the carpd object (status,
// demote, maintenance, resync, reload) and the carp.state events. The
// client reconnects and re-registers by itself when ubusd restarts;
// without ubusd the daemon runs on and the client keeps retrying.
type ubusBridge struct {
	d   *Daemon
	log *logx.Logger
	cl  *ubus.Client
	q   *asyncq.Queue[ubusEvent]
	// undelivered counts events ubusd did not take (ubus events are not
	// kept across an outage); q counts those dropped when full.
	undelivered atomic.Uint64
	// netifd is the interface trackers' netifd, woken on each
	// network.interface event.
	netifd *track.UbusNetifd
}

// ubusEvent is one event to send: carp.state or carp.track.
type ubusEvent struct {
	name string
	data any
}

// ubusQueueLen bounds the events waiting to be sent.
const ubusQueueLen = 64

func newUbusBridge(d *Daemon, path string, log *logx.Logger) *ubusBridge {
	b := &ubusBridge{d: d, log: log.With("op", "ubus")}
	b.cl = ubus.NewClient(path, &ubus.Config{Logger: log}, b.setup)
	b.netifd = &track.UbusNetifd{Caller: b.cl}
	b.q = asyncq.New(ubusQueueLen, b.send)
	return b
}

func (b *ubusBridge) setup(ctx context.Context, c *ubus.Conn) error {
	_, err := c.AddObject(ctx, ubusObject, []ubus.Method{
		{Name: "status", Handler: b.handler("status")},
		{Name: "demote", Signature: []ubus.Arg{{Name: "vhid", Type: blob.TypeInt32},
			{Name: "interface", Type: blob.TypeString}, {Name: "by", Type: blob.TypeInt32},
			{Name: "group", Type: blob.TypeString}, {Name: "source", Type: blob.TypeString},
			{Name: "set", Type: blob.TypeInt32}, {Name: "ttl", Type: blob.TypeInt32}}, Handler: b.handler("demote")},
		{Name: "maintenance", Signature: []ubus.Arg{{Name: "enable", Type: blob.TypeBool},
			{Name: "wait", Type: blob.TypeInt32}}, Handler: b.handler("maintenance")},
		{Name: "resync", Handler: b.handler("resync")},
		{Name: "config_sync", Signature: []ubus.Arg{{Name: "dry_run", Type: blob.TypeBool},
			{Name: "force", Type: blob.TypeBool}}, Handler: b.handler("config_sync")},
		{Name: "reload", Handler: b.handler("reload")},
	})
	if err != nil {
		return err
	}
	// netifd announces every up/down/update of a network: re-resolve the
	// vhosts configured with network names.
	_, err = c.Listen(ctx, "network.interface", func(_ string, data json.RawMessage) {
		var ev struct {
			Interface string `json:"interface"`
		}
		if json.Unmarshal(data, &ev) == nil && ev.Interface != "" {
			select {
			case b.d.netEvents <- ev.Interface:
			default: // the loop is busy; the next event or retry catches up
			}
			b.netifd.Notify()
		}
	})
	return err
}

// ubusArgs are the arguments of every method. Unknown ones (LuCI adds
// ubus_rpc_session) are ignored; numbers and booleans are accepted in any
// of the forms blobmsg and JSON give them.
type ubusArgs struct {
	VHID      flexInt   `json:"vhid"`
	Interface string    `json:"interface"`
	By        *flexInt  `json:"by"`
	Enable    *flexBool `json:"enable"`
	Group     string    `json:"group"`
	Source    string    `json:"source"`
	Set       *flexInt  `json:"set"`
	TTL       *flexInt  `json:"ttl"`
	Wait      flexInt   `json:"wait"`
	DryRun    *flexBool `json:"dry_run"`
	Force     *flexBool `json:"force"`
}

// handler adapts a daemon method to ubus: arguments in, the result as
// JSON out, errors mapped to ubus statuses.
func (b *ubusBridge) handler(method string) ubus.Handler {
	return func(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
		var a ubusArgs
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, ubus.StatusInvalidArgument.Err()
			}
		}
		req := Request{Method: method, Interface: a.Interface}
		switch method {
		case "demote":
			if (a.By == nil) == (a.Set == nil) || int(a.VHID) < 0 || int(a.VHID) > 255 {
				return nil, ubus.StatusInvalidArgument.Err() // by or set, not both
			}
			req.VHID, req.Group, req.Source = uint8(a.VHID), a.Group, a.Source
			if a.By != nil {
				req.By = int(*a.By)
			}
			if a.Set != nil {
				n := int(*a.Set)
				req.Set = &n
			}
			if a.TTL != nil {
				req.TTL = int(*a.TTL)
			}
		case "maintenance":
			if a.Enable == nil {
				return nil, ubus.StatusInvalidArgument.Err()
			}
			on := bool(*a.Enable)
			req.Enable, req.Wait = &on, int(a.Wait)
		case "config_sync":
			req.DryRun, req.Force = a.DryRun != nil && bool(*a.DryRun), a.Force != nil && bool(*a.Force)
		}
		res, err := b.d.HandleContext(ctx, req)
		// A failed maintenance wait answers with its reason (a ubus error
		// status carries none).
		var we *MaintenanceWaitError
		if errors.As(err, &we) {
			res, err = we.Result, nil
		}
		if err != nil {
			b.log.Warn("ubus call failed", "method", method, "err", err)
			return nil, ubusStatus(err).Err()
		}
		if res == nil {
			return nil, nil
		}
		return json.Marshal(res)
	}
}

func ubusStatus(err error) ubus.Status {
	switch {
	case errors.Is(err, ErrInvalidArgument):
		return ubus.StatusInvalidArgument
	case errors.Is(err, ErrNotFound):
		return ubus.StatusNotFound
	case errors.Is(err, ErrNotSupported):
		return ubus.StatusNotSupported
	}
	return ubus.StatusUnknownError
}

// event queues a carp.state event without blocking (called from vhost
// goroutines). A full queue drops the oldest.
func (b *ubusBridge) event(ev TransitionRecord) { b.q.Push(ubusEvent{"carp.state", ev}) }

// trackEvent queues a carp.track event without blocking.
func (b *ubusBridge) trackEvent(ev TrackEvent) { b.q.Push(ubusEvent{"carp.track", ev}) }

// sendTimeout bounds one event send.
const sendTimeout = 2 * time.Second

func (b *ubusBridge) send(ev ubusEvent) {
	data, _ := json.Marshal(ev.data)
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	err := b.cl.Send(ctx, ev.name, data)
	if err == nil {
		// procd (`procd_set_param watch carpd`) and other subscribers get
		// it as a notification of the object too.
		err = b.cl.Notify(ctx, ubusObject, ev.name, data)
	}
	if err != nil {
		b.undelivered.Add(1)
		b.log.Debug("ubus event not delivered", "event", ev.name, "err", err)
	}
}

// close sends what is queued (bounded by sendTimeout each), then
// disconnects.
func (b *ubusBridge) close() {
	b.q.Close()
	b.cl.Close()
}

// flexInt accepts a JSON number or a numeric string.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return fmt.Errorf("not a number: %s", b)
		}
		n = json.Number(s)
	}
	// Out of range saturates (strconv returns the nearest bound with
	// ErrRange), and so does narrowing to a 32-bit int (mips): a huge
	// "by" means "all the way", it must never wrap round.
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return err
	}
	*f = flexInt(min(max(i, math.MinInt), math.MaxInt))
	return nil
}

// flexBool accepts true/false, 1/0 and "1"/"0" (LuCI and the ubus CLI
// send all of them).
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", "1", `"1"`, `"true"`, `"on"`, `"yes"`:
		*f = true
	case "false", "0", `"0"`, `"false"`, `"off"`, `"no"`:
		*f = false
	default:
		return fmt.Errorf("not a boolean: %s", b)
	}
	return nil
}
