package ipk

import (
	"bytes"
	"debug/elf"
	"fmt"
	"slices"
	"strings"
)

// SizeReport is what an unstripped Go ELF binary spends its bytes on.
type SizeReport struct {
	FileSize int64
	// Sections: file bytes of each allocated section that is in the file
	// (not .bss/.noptrbss).
	Sections map[string]int64
	// Text and Data: bytes of symbols in .text and in
	// .data/.noptrdata/.rodata, by Go package. Type descriptors, string
	// data and the pcln tables (.gopclntab) have no per-package symbols in
	// Go's symbol table; Overhead says how much of the file that is.
	Packages []PackageSize
	Overhead int64 // FileSize - attributed bytes
}

// PackageSize is the code and data of one Go package.
type PackageSize struct {
	Package    string
	Text, Data int64
}

// Sizes measures bin, which must have its symbol table (built without -s).
func Sizes(bin []byte) (*SizeReport, error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("ipk: no symbol table (a stripped binary?): %w", err)
	}
	r := &SizeReport{FileSize: int64(len(bin)), Sections: map[string]int64{}}
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Type != elf.SHT_NOBITS {
			r.Sections[s.Name] = int64(s.Size)
		}
	}
	by := map[string]*PackageSize{}
	var attributed int64
	for _, s := range syms {
		if s.Size == 0 || int(s.Section) <= 0 || int(s.Section) >= len(f.Sections) {
			continue
		}
		sec := f.Sections[s.Section]
		if sec.Type == elf.SHT_NOBITS {
			continue
		}
		text := sec.Name == ".text"
		if !text && sec.Name != ".rodata" && sec.Name != ".data" && sec.Name != ".noptrdata" {
			continue
		}
		pkg := SymbolPackage(s.Name)
		p := by[pkg]
		if p == nil {
			p = &PackageSize{Package: pkg}
			by[pkg] = p
		}
		if text {
			p.Text += int64(s.Size)
		} else {
			p.Data += int64(s.Size)
		}
		attributed += int64(s.Size)
	}
	for _, p := range by {
		r.Packages = append(r.Packages, *p)
	}
	slices.SortFunc(r.Packages, func(a, b PackageSize) int {
		if d := (b.Text + b.Data) - (a.Text + a.Data); d != 0 {
			return int(d)
		}
		return strings.Compare(a.Package, b.Package)
	})
	r.Overhead = r.FileSize - attributed
	return r, nil
}

// SymbolPackage is the import path of the package that defines a Go
// symbol: "encoding/json.(*decodeState).object" → "encoding/json",
// "slices.SortFunc[go.shape.int]" → "slices". Linker-made symbols
// ("go:func.*", "type:…", "go:itab.…") are returned with their prefix.
func SymbolPackage(name string) string {
	for _, p := range []string{"go:", "type:"} {
		if strings.HasPrefix(name, p) {
			return p
		}
	}
	prefix := name
	if i := strings.IndexAny(prefix, "(["); i >= 0 {
		prefix = prefix[:i]
	}
	slash := strings.LastIndex(prefix, "/")
	if dot := strings.Index(name[slash+1:], "."); dot >= 0 {
		return name[:slash+1+dot]
	}
	return name
}

// Module groups a package path the way a size budget is argued about:
// this module's packages by their directory ("carpd/ctsync"), a
// third-party module by its path, the standard library ("std") apart.
func Module(pkg, self string) string {
	switch {
	case pkg == self || pkg == "main":
		return "carpd (main)"
	case pkg == "go:" || pkg == "type:":
		return "(linker-made: type hash/eq funcs, itabs)"
	case strings.HasPrefix(pkg, self+"/"):
		rest := strings.TrimPrefix(pkg, self+"/")
		rest = strings.TrimPrefix(rest, "internal/") // carpd/ctsync, not carpd/internal
		if i := strings.Index(rest, "/"); i >= 0 {
			rest = rest[:i]
		}
		return "carpd/" + rest
	case strings.HasPrefix(pkg, "vendor/") || !strings.Contains(strings.Split(pkg, "/")[0], "."):
		return "std"
	}
	parts := strings.Split(pkg, "/")
	n := 3
	if len(parts) > 3 && len(parts[3]) > 1 && parts[3][0] == 'v' && strings.Trim(parts[3][1:], "0123456789") == "" {
		n = 4 // github.com/jsimonetti/rtnetlink/v2
	}
	return strings.Join(parts[:min(n, len(parts))], "/")
}
