package ipk

import (
	"slices"
	"testing"
)

// TestPostinstPkg: a package's own postinst is stored as ./postinst-pkg
// (0755, with the newline echo gives it) between postinst and prerm, as
// package-pack.mk does; the generated stubs stay as they are.
func TestPostinstPkg(t *testing.T) {
	p := &Package{
		Control: Control{Package: "luci-app-x", Version: "1.0-r1", Architecture: "all", SourceDateEpoch: testEpoch,
			Depends: []string{"libc", "luci-base"}, Section: "luci", Description: "x"},
		Files:       []File{{Path: "/www/luci-static/resources/view/x/status.js", Mode: 0o644, Data: []byte("'use strict';\n")}},
		PostinstPkg: "#!/bin/sh\nrm -rf /tmp/luci-modulecache/\n",
	}
	b, err := ipkBytes(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	type ent struct {
		name string
		mode int64
	}
	var ctl []ent
	for _, e := range c.Control {
		ctl = append(ctl, ent{e.Name, e.Mode})
	}
	if want := []ent{{"./", 0o755}, {"./control", 0o644}, {"./postinst", 0o755}, {"./postinst-pkg", 0o755}, {"./prerm", 0o755}}; !slices.Equal(ctl, want) {
		t.Errorf("control entries %v, want %v", ctl, want)
	}
	for name, want := range map[string]string{"postinst": Postinst, "prerm": Prerm, "postinst-pkg": p.PostinstPkg} {
		if e, _ := c.ControlFile(name); string(e.Data) != want {
			t.Errorf("%s: %q, want %q", name, e.Data, want)
		}
	}
	if p.FileName() != "luci-app-x_1.0-r1_all.ipk" || c.Field("Architecture") != "all" {
		t.Errorf("file name %s, architecture %q", p.FileName(), c.Field("Architecture"))
	}
}
