package main

import "testing"

func TestConvert(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{ // next to carpd's imports
			"package p\n\nimport (\n\t\"encoding/json\"\n\t\"fmt\"\n\n\t\"github.com/carpd/carpd/ubus\"\n)\n",
			"package p\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/carpd/carpd/ubus\"\n\t\"github.com/carpd/carpd/ubus/json\"\n)\n",
		},
		{ // a group of its own
			"package p\n\nimport (\n\t\"encoding/json\"\n\t\"fmt\"\n)\n",
			"package p\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/carpd/carpd/ubus/json\"\n)\n",
		},
		{ // alone, and named json
			"package p\n\nimport json \"encoding/json\"\n",
			"package p\n\nimport \"github.com/carpd/carpd/ubus/json\"\n",
		},
		{ // stdjson stays
			"package p\n\nimport stdjson \"encoding/json\"\n",
			"package p\n\nimport stdjson \"encoding/json\"\n",
		},
	} {
		got, _, err := convert("x.go", []byte(c.in))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("convert(%q) =\n%s\nwant\n%s", c.in, got, c.want)
		}
		again, changed, _ := convert("x.go", got)
		if changed || string(again) != string(got) {
			t.Errorf("second run changed %q", got)
		}
	}
}
