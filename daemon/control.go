package daemon

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The control socket speaks one JSON request per connection and answers
// with one JSON response:
//
//	{"method":"status"}
//	{"method":"demote","by":N}                    every vhid, relative
//	{"method":"demote","vhid":1,"interface":"eth0","by":N}
//	{"method":"reload"}
//	{"method":"maintenance","enable":true}
//
// Response: {"ok":true,"result":...} or {"ok":false,"error":"..."}.
// The socket is mode 0600: only root controls carpd.

// Request is a control-socket request.
type Request struct {
	Method    string `json:"method"`
	VHID      uint8  `json:"vhid,omitempty"`
	Interface string `json:"interface,omitempty"`
	By        int    `json:"by,omitempty"`
	Enable    *bool  `json:"enable,omitempty"`
}

// Response is a control-socket response.
type Response struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// controlTimeout bounds one control connection.
const controlTimeout = 5 * time.Second

func listenControl(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// A stale socket from a crashed instance is removed, but a live one
	// belongs to another carpd: refuse to steal it.
	if c, err := dialControl(path); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use by another carpd (use -s or option control_socket)", path)
	}
	_ = os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(controlTimeout))
			var req Request
			resp := Response{OK: true}
			if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
				resp = Response{Error: "bad request: " + err.Error()}
			} else if res, err := d.Handle(req); err != nil {
				resp = Response{Error: err.Error()}
			} else if res != nil {
				resp.Result, _ = json.Marshal(res)
			}
			_ = json.NewEncoder(c).Encode(resp)
		}()
	}
}

// Handle carries out one control request; the ubus object uses it too.
func (d *Daemon) Handle(req Request) (any, error) {
	switch req.Method {
	case "status":
		return d.Status(), nil
	case "demote":
		return nil, d.Demote(req.VHID, req.Interface, req.By)
	case "reload":
		return nil, d.Reload()
	case "maintenance":
		if req.Enable == nil {
			return nil, fmt.Errorf("%w: maintenance needs enable: true or false", ErrInvalidArgument)
		}
		return nil, d.Maintenance(*req.Enable)
	case "resync":
		return nil, d.Resync()
	}
	return nil, fmt.Errorf("%w: unknown method %q", ErrInvalidArgument, req.Method)
}

// Call sends one request to the control socket at path.
func Call(path string, req Request) (json.RawMessage, error) {
	c, err := dialControl(path)
	if err != nil {
		return nil, fmt.Errorf("cannot reach carpd at %s: %w", path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(controlTimeout))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, err
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("reading answer from %s: %w", path, err)
	}
	if !resp.OK {
		return nil, errors.New(resp.Error)
	}
	return resp.Result, nil
}
