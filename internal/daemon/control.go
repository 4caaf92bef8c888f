package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/ubus/json"
)

// The control socket speaks one JSON request per connection and answers
// with one JSON response:
//
//	{"method":"status"}
//	{"method":"demote","by":N}                    every vhid, relative
//	{"method":"demote","vhid":1,"interface":"eth0","by":N}
//	{"method":"demote","interface":"eth0","by":N} every vhid on eth0
//	{"method":"demote","group":"wan","by":N}      the group wan's manual demotion
//	{"method":"demote","group":"wan","source":"mwan3","set":N,"ttl":S}
//	                                              one named source, absolutely
//	{"method":"reload"}                           answers once removed vhids bowed out
//	{"method":"maintenance","enable":true}        result: maintenance, persisted, warning
//	{"method":"maintenance","enable":true,"wait":60}  answers once the peer took over (maintenance.go)
//	{"method":"resync"}
//
// Response: {"ok":true,"result":...} or {"ok":false,"error":"..."}. A
// demotion counter saturates in [0, 255]: "by" may be any int.
//
// Who may use it: the socket file is mode 0600 from the moment it appears
// (it is bound in a private directory and renamed into place), and each
// connection's peer credentials (SO_PEERCRED) must be root or the user
// carpd runs as; anyone else is answered "permission denied". A request is
// at most MaxRequest bytes, at most maxConns connections are served at
// once (more are answered "busy"), and each has controlTimeout to send its
// request and read the answer.

// Request is a control-socket request.
type Request struct {
	Method    string `json:"method"`
	VHID      uint8  `json:"vhid,omitempty"`
	Interface string `json:"interface,omitempty"`
	By        int    `json:"by,omitempty"`
	Enable    *bool  `json:"enable,omitempty"`
	// Demotion groups: Group is the group of a relative demotion (By) or
	// of the source set absolutely: Source set to Set (absent is not 0)
	// for TTL seconds (0: until changed).
	Group  string `json:"group,omitempty"`
	Source string `json:"source,omitempty"`
	Set    *int   `json:"set,omitempty"`
	TTL    int    `json:"ttl,omitempty"`
	Wait   int    `json:"wait,omitempty"` // maintenance: seconds to wait for the handover
	// config_sync: show what would change, or take the primary's version
	// over a local edit (secondary) / send it forced (primary).
	DryRun bool `json:"dry_run,omitempty"`
	Force  bool `json:"force,omitempty"`
}

// Response is a control-socket response.
type Response struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// controlTimeout bounds one control connection.
const controlTimeout = 5 * time.Second

// MaxRequest bounds one control request: a request is a few dozen bytes,
// and the daemon never reads (or allocates for) more than this.
const MaxRequest = 64 << 10

// maxConns bounds the control connections served at once. The CLI, LuCI's
// status polling and scripts need a handful.
const maxConns = 16

// busyTimeout bounds the answer to a connection refused for maxConns.
const busyTimeout = 100 * time.Millisecond

func listenControl(path string) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// A stale socket from a crashed instance is removed, but a live one
	// belongs to another carpd: refuse to steal it.
	if c, err := dialControl(path); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use by another carpd (use -s or option control_socket)", path)
	}
	// The socket never exists at path with a wider mode than 0600: it is
	// bound in a fresh directory only we can enter, restricted there, and
	// renamed into place. (chmod after bind leaves a window in which any
	// user can connect; umask is process-wide.)
	// (os.MkdirTemp would do, but with RemoveAll it links 16 KB of
	// directory reading into the MIPS binary.)
	priv := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	_ = os.Remove(filepath.Join(priv, "s")) // a crashed carpd of this pid
	_ = os.Remove(priv)
	if err := os.Mkdir(priv, 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer os.Remove(priv)
	tmp := filepath.Join(priv, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer os.Remove(tmp) // after a failure; gone by the rename otherwise
	// The listener would unlink tmp on Close; Run removes path instead.
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return l, nil
}

// dialControl connects to the control socket at path. DialUnix, not
// net.Dial or DialTimeout: those go through the resolver and link Go's whole
// DNS client (about 250 KB on MIPS, package/SIZE.md), and a Unix connect
// never waits anyway (a full backlog is EAGAIN at once).
func dialControl(path string) (*net.UnixConn, error) {
	return net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
}

// serveControl serves until l is closed, then waits for open connections.
func (d *Daemon) serveControl(l net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, maxConns)
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.Warn("control socket", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			// A fresh socket's buffer takes the short answer at once;
			// the deadline covers a peer that is not a fresh socket.
			_ = c.SetDeadline(time.Now().Add(busyTimeout))
			_ = json.NewEncoder(c).Encode(Response{Error: "busy: too many control connections are open"})
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(controlTimeout))
			_ = json.NewEncoder(c).Encode(d.serveConn(c))
		}()
	}
}

// serveConn reads and carries out the one request of c.
func (d *Daemon) serveConn(c net.Conn) Response {
	// The request is read (bounded) before a refusal, so that the client
	// is done writing and reads the answer.
	req, rerr := readRequest(c)
	if uc, ok := c.(*net.UnixConn); ok {
		if err := checkPeer(uc); err != nil {
			d.log.Warn("control connection refused", "err", err)
			return Response{Error: err.Error()}
		}
	}
	if rerr != nil {
		return Response{Error: rerr.Error()}
	}
	if req.Wait > 0 && req.Wait <= MaxMaintenanceWait {
		_ = c.SetDeadline(time.Now().Add(controlTimeout + time.Duration(req.Wait)*time.Second))
	}
	res, err := d.Handle(req)
	if err != nil {
		return Response{Error: err.Error()}
	}
	resp := Response{OK: true}
	if res != nil {
		resp.Result, _ = json.Marshal(res)
	}
	return resp
}

// readRequest decodes one request, reading at most MaxRequest bytes (one
// more tells an oversized request apart).
func readRequest(r io.Reader) (Request, error) {
	lr := &io.LimitedReader{R: r, N: MaxRequest + 1}
	var req Request
	if err := json.NewDecoder(lr).Decode(&req); err != nil {
		if lr.N == 0 {
			return req, fmt.Errorf("bad request: larger than %d bytes", MaxRequest)
		}
		return req, fmt.Errorf("bad request: %w", err)
	}
	return req, nil
}

// Handle carries out one control request; the ubus object uses it too. It
// runs on the requester's goroutine and asks the loop for what it needs.
func (d *Daemon) Handle(req Request) (any, error) {
	return d.HandleContext(context.Background(), req)
}

// HandleContext is Handle for a caller that stops waiting when ctx ends
// (a maintenance wait goes on; status shows it).
func (d *Daemon) HandleContext(ctx context.Context, req Request) (any, error) {
	switch req.Method {
	case "status":
		return d.Status()
	case "demote":
		if err := checkDemoteRequest(req); err != nil {
			return nil, err
		}
		if req.Source != "" || req.Set != nil {
			return nil, d.SetDemotion(req.Group, req.Source, *req.Set, req.TTL)
		}
		return nil, d.Demote(req.VHID, req.Interface, req.Group, req.By)
	case "reload":
		return nil, d.Reload()
	case "maintenance":
		if req.Enable == nil {
			return nil, fmt.Errorf("%w: maintenance needs enable: true or false", ErrInvalidArgument)
		}
		return d.maintenanceRequest(ctx, *req.Enable, req.Wait)
	case "resync":
		return nil, d.Resync()
	case "config_sync":
		return d.cfgs.request(ctx, req.DryRun, req.Force)
	}
	return nil, fmt.Errorf("%w: unknown method %q", ErrInvalidArgument, req.Method)
}

// Demote changes a manual demotion (see demote).
func (d *Daemon) Demote(vhid uint8, iface, group string, delta int) error {
	var err error
	if derr := d.do(func() { err = d.demote(vhid, iface, group, delta) }); derr != nil {
		return derr
	}
	return err
}

// checkDemoteRequest checks the shape of a demote request: relative
// (by, with a group or a vhid/interface) or absolute (source and set,
// with a group and a ttl).
func checkDemoteRequest(req Request) error {
	if req.Source == "" && req.Set == nil {
		if req.TTL != 0 {
			return fmt.Errorf("%w: ttl goes with source and set", ErrInvalidArgument)
		}
		return nil
	}
	switch {
	case req.Source == "":
		return fmt.Errorf("%w: set needs a source name", ErrInvalidArgument)
	case req.Set == nil:
		return fmt.Errorf("%w: source %q needs set: its new value", ErrInvalidArgument, req.Source)
	case req.By != 0 || req.VHID != 0 || req.Interface != "":
		return fmt.Errorf("%w: a source is set in a group, not with by, vhid or interface", ErrInvalidArgument)
	}
	return nil
}

// SetDemotion sets the named source of group ("" is carp) to value, for
// ttl seconds (0: until changed); see setExternal.
func (d *Daemon) SetDemotion(group, source string, value, ttl int) error {
	var err error
	if derr := d.do(func() { err = d.setExternal(group, source, value, ttl) }); derr != nil {
		return derr
	}
	return err
}

// resyncTimeout bounds a resync request's wait for the sync engine.
const resyncTimeout = 2 * time.Second

// Resync asks the sync peer for a full bulk transfer.
func (d *Daemon) Resync() error {
	var eng *ctsync.Engine
	if err := d.do(func() {
		if d.sync != nil {
			eng = d.sync.engine
		}
	}); err != nil {
		return err
	}
	if eng == nil {
		return fmt.Errorf("%w: connection-state sync is not configured", ErrNotSupported)
	}
	ctx, cancel := context.WithTimeout(context.Background(), resyncTimeout)
	defer cancel()
	eng.Resync(ctx)
	return nil
}

// Call sends one request to the control socket at path.
func Call(path string, req Request) (json.RawMessage, error) {
	c, err := dialControl(path)
	if err != nil {
		return nil, fmt.Errorf("cannot reach carpd at %s: %w", path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(controlTimeout + time.Duration(max(req.Wait, 0))*time.Second))
	werr := json.NewEncoder(c).Encode(req)
	// The daemon may answer (and close) before it has read everything
	// (a refused request): its answer says more than the write error.
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		if werr != nil {
			return nil, werr
		}
		return nil, fmt.Errorf("reading answer from %s: %w", path, err)
	}
	if !resp.OK {
		return nil, errors.New(resp.Error)
	}
	return resp.Result, nil
}
