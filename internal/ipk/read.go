package ipk

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Entry is one member of a tar inside an .ipk, as archive/tar reads it.
type Entry struct {
	Name     string // as stored, e.g. ./usr/sbin/carpd
	Typeflag byte
	Mode     int64
	UID, GID int
	Uname    string
	Gname    string
	ModTime  int64 // seconds
	Format   tar.Format
	Data     []byte
}

// IsDir reports whether e is a directory.
func (e Entry) IsDir() bool { return e.Typeflag == tar.TypeDir }

// Path is the absolute installed path of a data entry: ./etc/x → /etc/x,
// ./ → /.
func (e Entry) Path() string {
	return "/" + strings.Trim(strings.TrimPrefix(e.Name, "."), "/")
}

// Field is one control field, in file order.
type Field struct{ Name, Value string }

// Contents is an .ipk taken apart.
type Contents struct {
	Outer      []Entry     // debian-binary, data.tar.gz, control.tar.gz (compressed bytes)
	OuterGzip  gzip.Header // the .ipk's own gzip header
	DataGzip   gzip.Header
	CtrlGzip   gzip.Header
	DataTar    []byte // uncompressed data.tar
	ControlTar []byte // uncompressed control.tar
	Data       []Entry
	Control    []Entry
	Fields     []Field // parsed ./control
}

// Read takes an .ipk apart the way opkg-lede does: gunzip, then walk the
// tar for debian-binary, control.tar.gz and data.tar.gz (with or without
// "./"). Unlike opkg it insists on all three.
func Read(ipk []byte) (*Contents, error) {
	var c Contents
	outer, hdr, err := gunzip(ipk)
	if err != nil {
		return nil, fmt.Errorf("ipk: outer container is not gzip (an ar .ipk?): %w", err)
	}
	c.OuterGzip = hdr
	if c.Outer, err = readTar(outer); err != nil {
		return nil, fmt.Errorf("ipk: outer tar: %w", err)
	}
	get := func(name string) ([]byte, error) {
		for _, e := range c.Outer {
			if strings.TrimPrefix(e.Name, "./") == name {
				return e.Data, nil
			}
		}
		return nil, fmt.Errorf("ipk: no %s in the package", name)
	}
	db, err := get("debian-binary")
	if err != nil {
		return nil, err
	}
	if string(db) != DebianBinary {
		return nil, fmt.Errorf("ipk: debian-binary is %q, want %q", db, DebianBinary)
	}
	for _, part := range []struct {
		name string
		raw  *[]byte
		hdr  *gzip.Header
		ents *[]Entry
	}{
		{"control.tar.gz", &c.ControlTar, &c.CtrlGzip, &c.Control},
		{"data.tar.gz", &c.DataTar, &c.DataGzip, &c.Data},
	} {
		gz, err := get(part.name)
		if err != nil {
			return nil, err
		}
		if *part.raw, *part.hdr, err = gunzip(gz); err != nil {
			return nil, fmt.Errorf("ipk: %s: %w", part.name, err)
		}
		if *part.ents, err = readTar(*part.raw); err != nil {
			return nil, fmt.Errorf("ipk: %s: %w", part.name, err)
		}
	}
	ctl, ok := c.ControlFile("control")
	if !ok {
		return nil, errors.New("ipk: control.tar.gz has no control file")
	}
	if c.Fields, err = ParseControl(ctl.Data); err != nil {
		return nil, err
	}
	return &c, nil
}

func gunzip(b []byte) ([]byte, gzip.Header, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, gzip.Header{}, err
	}
	zr.Multistream(false)
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, gzip.Header{}, err
	}
	return out, zr.Header, zr.Close()
}

func readTar(b []byte) ([]Entry, error) {
	var out []Entry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{
			Name: h.Name, Typeflag: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid,
			Uname: h.Uname, Gname: h.Gname, ModTime: h.ModTime.Unix(), Format: h.Format, Data: data,
		})
	}
}

// ControlFile returns the member name ("control", "postinst", …) of control.tar.gz.
func (c *Contents) ControlFile(name string) (Entry, bool) {
	for _, e := range c.Control {
		if strings.TrimPrefix(e.Name, "./") == name {
			return e, true
		}
	}
	return Entry{}, false
}

// DataFile returns the data entry installed at path (e.g. /usr/sbin/carpd).
func (c *Contents) DataFile(path string) (Entry, bool) {
	for _, e := range c.Data {
		if e.Path() == path {
			return e, true
		}
	}
	return Entry{}, false
}

// Field returns the value of the named control field ("" if absent).
// Continuation lines are joined with "\n".
func (c *Contents) Field(name string) string {
	for _, f := range c.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// ParseControl splits a control file into fields. A line that starts with
// a blank continues the previous field (its text after the first blank is
// appended after a "\n"); the first line's value is trimmed of blanks.
func ParseControl(b []byte) ([]Field, error) {
	var fields []Field
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == "":
			return nil, fmt.Errorf("ipk: control line %d is empty", n)
		case line[0] == ' ' || line[0] == '\t':
			if len(fields) == 0 {
				return nil, fmt.Errorf("ipk: control line %d continues nothing", n)
			}
			fields[len(fields)-1].Value += "\n" + line[1:]
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("ipk: control line %d: %q is not a field", n, line)
			}
			fields = append(fields, Field{name, strings.TrimSpace(value)})
		}
	}
	return fields, sc.Err()
}
