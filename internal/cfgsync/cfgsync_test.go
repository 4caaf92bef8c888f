package cfgsync

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/wire"
)

func TestChunksReassemble(t *testing.T) {
	for _, size := range []int{0, 1, ChunkData - 1, ChunkData, ChunkData + 1, 10*ChunkData + 5, MaxSize} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i/300)
		}
		recs := Chunks("firewall", false, true, data)
		if want := max((size+ChunkData-1)/ChunkData, 1); len(recs) != want {
			t.Fatalf("%d bytes: %d chunks, want %d", size, len(recs), want)
		}
		for _, r := range recs {
			if b, err := r.MarshalBinary(); err != nil || len(b) > 1200-wire.Overhead {
				t.Fatalf("chunk of %d bytes: %v", len(b), err)
			}
		}
		// Out of order, with duplicates; the last one completes it.
		rng := rand.New(rand.NewPCG(uint64(size), 1))
		order := rng.Perm(len(recs))
		var a Assembler
		for k, i := range order {
			if k > 0 {
				if o, w := a.Add(recs[order[k-1]].Config); o != nil || w != "" {
					t.Fatalf("a duplicate chunk: %v %q", o, w)
				}
			}
			obj, why := a.Add(recs[i].Config)
			if k < len(order)-1 {
				if obj != nil || why != "" {
					t.Fatalf("%d bytes: complete after %d of %d chunks (%q)", size, k+1, len(order), why)
				}
				continue
			}
			if why != "" || obj == nil || !bytes.Equal(obj.Data, data) || obj.Name != "firewall" || obj.File || !obj.Force || obj.Hash != Sum(data) {
				t.Fatalf("%d bytes: got %v %q", size, obj != nil, why)
			}
		}
		if a.Pending() != 0 {
			t.Errorf("%d objects still pending", a.Pending())
		}
	}
}

// TestRetryFillsIn: chunks lost the first time come with the resend of
// the same version; a new version starts over.
func TestRetryFillsIn(t *testing.T) {
	data := bytes.Repeat([]byte("config zone\n"), 300)
	recs := Chunks("/etc/x", true, false, data)
	var a Assembler
	for i := range recs {
		if i%2 == 0 {
			a.Add(recs[i].Config)
		}
	}
	// A newer version of it: the old chunks are forgotten.
	data2 := append([]byte("# new\n"), data...)
	recs2 := Chunks("/etc/x", true, false, data2)
	for i := range recs2 {
		if i%2 == 1 {
			if o, _ := a.Add(recs2[i].Config); o != nil {
				t.Fatal("complete from half of each version")
			}
		}
	}
	var got *Object
	for i := range recs2 {
		if o, why := a.Add(recs2[i].Config); o != nil || why != "" {
			got = o
			if i != len(recs2)-1 || why != "" {
				t.Fatalf("complete at %d of %d (%q)", i, len(recs2), why)
			}
		}
	}
	if got == nil || !got.File || !bytes.Equal(got.Data, data2) {
		t.Fatalf("got %+v", got)
	}
}

func TestAssemblerRefuses(t *testing.T) {
	var a Assembler
	if _, why := a.Add(&wire.ConfigChunk{Name: "big", Total: MaxSize + 1, Data: []byte("x")}); why != ReasonTooLarge {
		t.Errorf("oversized: %q", why)
	}
	// Chunks that do not make their hash.
	recs := Chunks("dhcp", false, false, []byte("config dnsmasq\n"))
	c := *recs[0].Config
	c.Data = []byte("config dnsmasX\n")
	if o, why := a.Add(&c); o != nil || why != ReasonHash {
		t.Errorf("wrong data: %v %q", o, why)
	}
	// Overlapping chunks that would cover the length twice over a hole.
	h := Sum([]byte("abcdef"))
	a.Add(&wire.ConfigChunk{Name: "o", Hash: h, Total: 6, Offset: 0, Data: []byte("abc")})
	if o, why := a.Add(&wire.ConfigChunk{Name: "o", Hash: h, Total: 6, Offset: 1, Data: []byte("bcd")}); o != nil || why != "" {
		t.Errorf("overlap completed it: %v %q", o, why)
	}
	if o, why := a.Add(&wire.ConfigChunk{Name: "o", Hash: h, Total: 6, Offset: 4, Data: []byte("ef")}); o == nil || string(o.Data) != "abcdef" {
		t.Errorf("overlap, then the rest: %v %q", o, why)
	}
	if _, why := a.Add(&wire.ConfigChunk{Name: "m", Total: 2, Offset: 2, Data: []byte("x")}); why != ReasonMalformed {
		t.Errorf("past the total: %q", why)
	}
}

func TestReasonCodes(t *testing.T) {
	for _, r := range reasons[1:] {
		if ReasonName(ReasonCode(r)) != r {
			t.Errorf("%q does not survive its code", r)
		}
	}
	if ReasonName(0) != "refused" || ReasonName(200) != "refused" {
		t.Error("unknown codes")
	}
}

func TestDecide(t *testing.T) {
	in, old, edited := Sum([]byte("new")), Sum([]byte("old")), Sum([]byte("edited"))
	var none Hash
	for _, c := range []struct {
		name        string
		local, last Hash
		force       bool
		want        Action
	}{
		{"no copy here", none, none, false, Write},
		{"the copy last synced", old, old, false, Write},
		{"the same already", in, old, false, Same},
		{"the same, never synced", in, none, false, Same},
		{"edited since", edited, old, false, Conflict},
		{"edited, forced", edited, old, true, Write},
		{"there before any sync", edited, none, false, Conflict},
		{"there before, forced", edited, none, true, Write},
	} {
		if got := Decide(in, c.local, c.last, c.force); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDiff(t *testing.T) {
	a := "config zone\n\toption name 'lan'\n\toption input 'ACCEPT'\n\toption output 'ACCEPT'\n\toption forward 'ACCEPT'\n\nconfig zone\n\toption name 'wan'\n"
	b := strings.Replace(a, "\toption output 'ACCEPT'", "\toption output 'REJECT'", 1)
	want := "--- here\n+++ primary\n" +
		"@@ -2 +2 @@\n \toption name 'lan'\n \toption input 'ACCEPT'\n-\toption output 'ACCEPT'\n+\toption output 'REJECT'\n \toption forward 'ACCEPT'\n \n"
	if got := Diff("here", "primary", []byte(a), []byte(b)); got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if Diff("a", "b", []byte(a), []byte(a)) != "" {
		t.Error("a diff of equal files")
	}
	if got := Diff("a", "b", nil, []byte("x\n")); got != "--- a\n+++ b\n@@ -1 +1 @@\n+x\n" {
		t.Errorf("from nothing: %q", got)
	}
	// Two changes apart: one hunk from the first to the last.
	c := strings.Replace(b, "option name 'wan'", "option name 'wan6'", 1)
	if got := Diff("a", "b", []byte(a), []byte(c)); !strings.Contains(got, "-\toption output 'ACCEPT'\n") || !strings.Contains(got, "+\toption name 'wan6'\n") {
		t.Errorf("two changes:\n%s", got)
	}
}

// applyDiff rebuilds the new text from a's lines and the diff's: it
// checks that a diff says everything that changed.
func applyDiff(t *testing.T, a []byte, d string) string {
	x := lines(a)
	var out []string
	i := 0
	for _, l := range strings.Split(strings.TrimSuffix(d, "\n"), "\n")[2:] {
		switch {
		case strings.HasPrefix(l, "@@ -"):
			var n int
			for _, c := range l[4:] {
				if c < '0' || c > '9' {
					break
				}
				n = n*10 + int(c-'0')
			}
			for i < n-1 {
				out = append(out, x[i])
				i++
			}
		case strings.HasPrefix(l, " "):
			if x[i] != l[1:] {
				t.Fatalf("context %q is not line %d %q", l, i+1, x[i])
			}
			out = append(out, x[i])
			i++
		case strings.HasPrefix(l, "-"):
			i++
		case strings.HasPrefix(l, "+"):
			out = append(out, l[1:])
		}
	}
	return strings.Join(append(out, x[i:]...), "\n")
}

func FuzzDiff(f *testing.F) {
	f.Add([]byte("a\nb\nc\n"), []byte("a\nc\nd\n"))
	f.Add([]byte("x\n\n\ny\nz\nq\nr\ns\nt\n"), []byte("x\ny\nz\nq\nr\ns\nT\n"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a) > 4096 || len(b) > 4096 {
			return
		}
		d := Diff("a", "b", a, b)
		if d == "" {
			if !bytes.Equal(a, b) {
				t.Fatal("no diff of different texts")
			}
			return
		}
		if got, want := applyDiff(t, a, d), strings.Join(lines(b), "\n"); got != want {
			t.Fatalf("the diff does not make b:\n%s\ngot %q\nwant %q", d, got, want)
		}
	})
}

// FuzzAssembler: whatever chunks come, the assembler never panics and never returns an object
// that does not make its hash.
func FuzzAssembler(f *testing.F) {
	for _, r := range Chunks("firewall", false, false, bytes.Repeat([]byte("config rule\n"), 100)) {
		b, _ := r.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{0x12, 0x26, 0, 1, 'a'})
	f.Fuzz(func(t *testing.T, stream []byte) {
		var a Assembler
		_ = wire.DecodeRecords(stream, func(r *wire.Record) error {
			if r.Type != wire.RecordConfig {
				return nil
			}
			o, _ := a.Add(r.Config)
			if o != nil && Sum(o.Data) != o.Hash {
				t.Fatal("an object that does not make its hash")
			}
			return nil
		})
	})
}
