package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/ipk"
)

// fakeELF is a minimal static x86-64 ELF executable header: enough for
// ipk.CheckBinary, nothing to run.
func fakeELF(t *testing.T) string {
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: 1, Ehsize: 64, Phentsize: 56, Shentsize: 64}
	copy(h.Ident[:], "\x7fELF\x02\x01\x01")
	binary.Write(&b, binary.LittleEndian, h)
	b.WriteString("payload")
	p := filepath.Join(t.TempDir(), "carpd")
	if err := os.WriteFile(p, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	bin, out := fakeELF(t), t.TempDir()
	stale := filepath.Join(out, "carpd_0.0.1-r1_x86_64.ipk")
	other := filepath.Join(out, "carpd_0.0.1-r1_mips_24kc.ipk")
	os.WriteFile(stale, []byte("old"), 0o644)
	os.WriteFile(other, []byte("old"), 0o644)
	args := []string{"-bin", bin, "-files", "../../package/carpd/files", "-arch", "x86_64",
		"-version", "0.1.0-r1", "-epoch", "1795565376", "-out", out}
	if err := run(args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "carpd_0.1.0-r1_x86_64.ipk"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ipk.Read(raw)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := c.DataFile("/usr/sbin/carpd"); !strings.HasSuffix(string(e.Data), "payload") || e.Mode != 0o755 {
		t.Errorf("binary %q mode %o", e.Data, e.Mode)
	}
	if c.Field("SourceDateEpoch") != "1795565376" || c.Field("Version") != "0.1.0-r1" {
		t.Errorf("fields %v", c.Fields)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("the older x86_64 package was not removed")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("another architecture's package was removed")
	}

	// SOURCE_DATE_EPOCH is the default of -epoch.
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	noEpoch := append([]string(nil), args[:len(args)-4]...)
	noEpoch = append(noEpoch, "-out", out)
	if err := run(noEpoch, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(filepath.Join(out, "carpd_0.1.0-r1_x86_64.ipk"))
	if c, err := ipk.Read(raw); err != nil || c.Field("SourceDateEpoch") != "1700000000" {
		t.Errorf("SOURCE_DATE_EPOCH not used: %v", err)
	}

	for name, bad := range map[string][]string{
		"wrong arch":   {"-bin", bin, "-arch", "mips_24kc", "-version", "1", "-epoch", "1", "-out", out, "-files", "../../package/carpd/files"},
		"no version":   {"-bin", bin, "-arch", "x86_64", "-epoch", "1", "-out", out},
		"bad epoch":    {"-bin", bin, "-arch", "x86_64", "-version", "1", "-epoch", "x", "-out", out},
		"no files":     {"-bin", bin, "-arch", "x86_64", "-version", "1", "-epoch", "1", "-out", out, "-files", t.TempDir()},
		"unknown arch": {"-bin", bin, "-arch", "powerpc_8548", "-version", "1", "-epoch", "1", "-out", out, "-files", "../../package/carpd/files"},
	} {
		if err := run(bad, io.Discard, io.Discard); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
