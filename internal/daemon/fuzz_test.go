package daemon

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzReadRequest: any bytes on the control socket give a request or an
// error, never a panic, and never more than MaxRequest+1 bytes are read;
// a request read re-encodes and reads back the same.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		`{"method":"status"}`,
		`{"method":"demote","vhid":5,"interface":"eth0","by":-3}`,
		`{"method":"demote","by":9223372036854775807}`,
		`{"method":"demote","by":99999999999999999999}`,
		`{"method":"maintenance","enable":true}`,
		`{"method":"demote","group":"wan","by":2}`,
		`{"method":"demote","group":"wan","source":"mwan3","set":10,"ttl":300}`,
		`{"method":"demote","source":"x","set":0}`,
		`{"method":"maintenance","enable":true,"wait":60}`,
		`{"method":"status"}{"method":"reload"}`,
		`{"method":"`,
		`{"vhid":256}`,
		`[]`,
		"",
	} {
		f.Add([]byte(s))
	}
	f.Add(append([]byte(`{"method":"status","interface":"`), bytes.Repeat([]byte{'a'}, MaxRequest+10)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		cr := &countingReader{r: bytes.NewReader(b)}
		req, err := readRequest(cr)
		if cr.n > MaxRequest+1 {
			t.Fatalf("read %d bytes", cr.n)
		}
		if err != nil {
			return
		}
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := readRequest(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if again.Method != req.Method || again.VHID != req.VHID || again.Interface != req.Interface || again.By != req.By ||
			(again.Enable == nil) != (req.Enable == nil) || req.Enable != nil && *again.Enable != *req.Enable ||
			again.Group != req.Group || again.Source != req.Source || again.TTL != req.TTL ||
			(again.Set == nil) != (req.Set == nil) || req.Set != nil && *again.Set != *req.Set {
			t.Fatalf("%+v became %+v", req, again)
		}
	})
}

// FuzzUbusArgs: any arguments a ubus caller sends decode or fail without
// a panic, and a number never wraps: it saturates in int's range.
func FuzzUbusArgs(f *testing.F) {
	for _, s := range []string{
		`{"vhid":1,"by":-1,"ubus_rpc_session":"x"}`,
		`{"by":"-1"}`,
		`{"by":9223372036854775808}`,
		`{"by":"-99999999999999999999"}`,
		`{"by":1.5}`,
		`{"enable":"on"}`,
		`{"enable":1}`,
		`{"enable":true,"wait":"25"}`,
		`{"interface":"br-lan","vhid":"300"}`,
		`{"group":"wan","source":"mwan3","set":"10","ttl":300}`,
		`{"source":"x","set":-99999999999999999999,"ttl":"99999999999999999999"}`,
		`{}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a ubusArgs
		if json.Unmarshal(b, &a) != nil || a.By == nil {
			return
		}
		var raw struct {
			By json.RawMessage `json:"by"`
		}
		if json.Unmarshal(b, &raw) != nil {
			return
		}
		var n json.Number
		if json.Unmarshal(raw.By, &n) != nil {
			var s string
			if json.Unmarshal(raw.By, &s) != nil {
				return
			}
			n = json.Number(s)
		}
		if len(n) > 0 && n[0] == '-' {
			if int(*a.By) > 0 {
				t.Fatalf("%s: negative became %d", raw.By, *a.By)
			}
		} else if int(*a.By) < 0 {
			t.Fatalf("%s: positive became %d", raw.By, *a.By)
		}
	})
}
