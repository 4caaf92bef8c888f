package json_test

import (
	"testing"

	"github.com/carpd/carpd/internal/jsondiff"
)

// seeds are the fuzz targets' corpus: the table inputs, and messages of
// the shapes carpd reads (control requests, ubus arguments, netifd
// status, the state file).
func seeds(f *testing.F) {
	for _, in := range unmarshalInputs {
		if len(in) < 1000 {
			f.Add([]byte(in))
		}
	}
	for _, in := range []string{
		`{"method":"demote","vhid":3,"by":-10,"group":"wan","source":"track"}`,
		`{"method":"maintenance","enable":true}`, `{"method":"status"}`,
		`{"ok":true,"result":{"version":"v","vhids":[{"vhid":1,"state":"MASTER"}]}}`,
		`{"ok":false,"error":"busy: too many control connections are open"}`,
		`{"maintenance":true}`, `{"interface":"lan","vhid":"3","by":"5","enable":"1","ubus_rpc_session":"x"}`,
		`{"up":true,"l3_device":"eth0","device":"br-lan","ipv4-address":[{"address":"192.0.2.1","mask":24}],` +
			`"ipv6-address":[],"route":[{"target":"0.0.0.0","mask":0,"nexthop":"192.0.2.254"}]}`,
		`{"action":"ifup","interface":"wan"}`,
	} {
		f.Add([]byte(in))
	}
}

// FuzzUnmarshal decodes arbitrary bytes with this package and with
// encoding/json into carpd's types and generic ones, and requires the same
// values and the same errors; what decodes is then encoded by both, which
// must give the same bytes.
func FuzzUnmarshal(f *testing.F) {
	seeds(f)
	ts := targets()
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, newV := range ts {
			if err := jsondiff.Unmarshal(data, newV); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			v := newV()
			if stdUnmarshal(data, v) == nil {
				if _, err := jsondiff.Marshal(v); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
		}
	})
}

// FuzzDecoder reads arbitrary bytes as a stream of values and of tokens,
// whole and one byte at a time, and requires what encoding/json's Decoder
// gives.
func FuzzDecoder(f *testing.F) {
	seeds(f)
	f.Add([]byte(`{"a":1} [2] "three" 4 null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoder(t, string(data))
	})
}
