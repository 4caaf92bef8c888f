package daemon

import (
	"testing"

	"github.com/carpd/carpd/internal/jsondiff"
)

// jsonInputs are control requests, ubus arguments (as rpcd and the ubus CLI
// send them: numbers as strings, booleans as 0/1, extra keys), state files
// and broken variants of each.
var jsonInputs = []string{
	`{"method":"status"}`, `{"method":"demote","vhid":3,"by":-10,"group":"wan","source":"track","set":5,"ttl":60}`,
	`{"method":"maintenance","enable":true}`, `{"METHOD":"status","Vhid":1}`, `{"method":"demote","vhid":256}`,
	`{"method":"demote","vhid":-1}`, `{"method":"demote","by":1.5}`, `{"method":["x"]}`, `{"enable":"yes"}`,
	`{"vhid":"3","by":"5","enable":"1","ubus_rpc_session":"00000000000000000000000000000000"}`,
	`{"vhid":3,"by":99999999999999999999,"enable":"on"}`, `{"vhid":"x"}`, `{"enable":2}`, `{"set":null,"ttl":null}`,
	`{"interface":"lan","vhid":1e2}`, `{"maintenance":true}`, `{"maintenance":1}`, `{"maintenance":"true"}`, ``, `{}`,
	`null`, `[]`, `{"maintenance":true}x`, `{"ok":true,"result":{"a":[1,2]}}`, `{"ok":false,"error":"busy","result":null}`,
	`{"action":"ifup","interface":"wan"}`, `{"interface":5}`,
}

func jsonTargets() map[string]func() any {
	return map[string]func() any{
		"ubusArgs":  func() any { return new(ubusArgs) },
		"persisted": func() any { return new(persisted) },
		"Request":   func() any { return new(Request) },
		"Response":  func() any { return new(Response) },
		"event": func() any {
			return new(struct {
				Interface string `json:"interface"`
			})
		},
	}
}

// TestJSONMatchesEncodingJSON: the daemon's JSON types decode and encode
// with ubus/json exactly as with encoding/json (values, errors, bytes).
func TestJSONMatchesEncodingJSON(t *testing.T) {
	for _, in := range jsonInputs {
		for name, newV := range jsonTargets() {
			if err := jsondiff.Unmarshal([]byte(in), newV); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	for seed := range uint64(20) {
		for _, err := range []error{
			jsondiff.RoundTrip[Status](seed), jsondiff.RoundTrip[persisted](seed),
			jsondiff.RoundTrip[Request](seed), jsondiff.RoundTrip[Response](seed),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzJSONDecode feeds arbitrary bytes to the decoders of the control
// socket, the ubus handlers and the state file, and requires
// encoding/json's result.
func FuzzJSONDecode(f *testing.F) {
	for _, in := range jsonInputs {
		f.Add([]byte(in))
	}
	ts := jsonTargets()
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, newV := range ts {
			if err := jsondiff.Unmarshal(data, newV); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	})
}
