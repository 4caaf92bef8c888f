package luciview

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/daemon"
)

// aclFile is rpcd's access-control file of the app: group -> "read" or
// "write" -> scope -> objects (array notation) or object -> functions
// (table notation).
type aclFile map[string]map[string]json.RawMessage

// grants returns what rpcd's session grants for the given access groups
// and levels, as "scope object function" strings. It follows rpcd's
// session.c: a write grant of a group also applies its read section; a
// scope in array notation grants each object with the level's name as the
// function, a scope in table notation grants the functions it lists.
func (a aclFile) grants(t *testing.T, levels map[string]string) []string {
	t.Helper()
	var out []string
	for group, level := range levels {
		sections := []string{"read"}
		if level == "write" {
			sections = append(sections, "write")
		}
		for _, perm := range sections {
			var scopes map[string]json.RawMessage
			if raw, ok := a[group][perm]; ok {
				if err := json.Unmarshal(raw, &scopes); err != nil {
					t.Fatalf("%s.%s: %v", group, perm, err)
				}
			}
			for scope, raw := range scopes {
				var objects []string
				var table map[string][]string
				if json.Unmarshal(raw, &objects) == nil {
					for _, o := range objects {
						out = append(out, scope+" "+o+" "+perm)
					}
				} else if err := json.Unmarshal(raw, &table); err == nil {
					for o, fns := range table {
						for _, f := range fns {
							out = append(out, scope+" "+o+" "+f)
						}
					}
				} else {
					t.Fatalf("%s.%s.%s: neither an array nor a table: %s", group, perm, scope, raw)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// decodeFile reads the JSON file name into v.
func decodeFile(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func readACL(t *testing.T) aclFile {
	t.Helper()
	var a aclFile
	decodeFile(t, filepath.Join(appDir, "root/usr/share/rpcd/acl.d/luci-app-carpd.json"), &a)
	return a
}

// TestACL: whoever can only read (a read grant of any of the app's groups)
// gets carpd's status and nothing of /etc/config/carpd, which holds the
// CARP passwords and the sync key; the controls and the configuration
// need a write grant, each of its own group.
func TestACL(t *testing.T) {
	a := readACL(t)
	all := map[string]string{}
	for g := range a {
		all[g] = "read"
	}
	if got, want := a.grants(t, all), []string{"ubus carpd status"}; !slices.Equal(got, want) {
		t.Errorf("a read grant of every group gives %q, want only %q", got, want)
	}
	if got, want := a.grants(t, map[string]string{"luci-app-carpd": "write"}),
		[]string{"ubus carpd demote", "ubus carpd maintenance", "ubus carpd reload", "ubus carpd resync", "ubus carpd status"}; !slices.Equal(got, want) {
		t.Errorf("a write grant of luci-app-carpd gives %q, want %q", got, want)
	}
	if got, want := a.grants(t, map[string]string{"luci-app-carpd-config": "write"}),
		[]string{"uci carpd read", "uci carpd write"}; !slices.Equal(got, want) {
		t.Errorf("a write grant of luci-app-carpd-config gives %q, want %q", got, want)
	}

	// The status page calls only what the status group grants.
	src, err := os.ReadFile(filepath.Join(appDir, "htdocs/luci-static/resources/view/carpd/status.js"))
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`object:\s*'([^']+)',\s*method:\s*'([^']+)'`)
	read := a.grants(t, map[string]string{"luci-app-carpd": "read"})
	write := a.grants(t, map[string]string{"luci-app-carpd": "write"})
	for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
		g := "ubus " + m[1] + " " + m[2]
		if !slices.Contains(write, g) {
			t.Errorf("status.js calls %s.%s, which luci-app-carpd does not grant", m[1], m[2])
		}
		if m[2] == "status" && !slices.Contains(read, g) {
			t.Errorf("a read grant of luci-app-carpd cannot call %s.%s", m[1], m[2])
		}
	}

	// The menu shows the configuration only with the configuration group.
	var menu map[string]struct {
		Action struct {
			Path string `json:"path"`
		} `json:"action"`
		Depends struct {
			ACL []string `json:"acl"`
		} `json:"depends"`
	}
	decodeFile(t, filepath.Join(appDir, "root/usr/share/luci/menu.d/luci-app-carpd.json"), &menu)
	if acl := menu["admin/services/carpd/config"].Depends.ACL; !slices.Equal(acl, []string{"luci-app-carpd-config"}) {
		t.Errorf("the config page depends on ACL groups %q, want luci-app-carpd-config", acl)
	}
	for node, e := range menu {
		for _, g := range e.Depends.ACL {
			if _, ok := a[g]; !ok {
				t.Errorf("menu node %s depends on ACL group %q, which the ACL file does not define", node, g)
			}
		}
	}
}

// TestStatusHasNoSecrets: `ubus call carpd status`, which a read grant
// serves, has no field that could carry a password or a key.
func TestStatusHasNoSecrets(t *testing.T) {
	secret := regexp.MustCompile(`(?i)pass|key|secret|psk|hmac_key`)
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" && !f.Anonymous {
				name = f.Name
			}
			if name != "" && secret.MatchString(name) {
				t.Errorf("status field %s%s could carry a secret", path, name)
			}
			walk(path+name+".", f.Type)
		}
	}
	walk("", reflect.TypeOf(daemon.Status{}))
	if len(seen) < 5 {
		t.Errorf("only %d struct types walked", len(seen))
	}
}
