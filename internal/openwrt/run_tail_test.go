package openwrt

import (
	"bytes"
	"testing"
)

// TestTailBuffer: runCombined keeps a program's last maxOutput bytes,
// however much it writes.
func TestTailBuffer(t *testing.T) {
	var tb tailBuffer
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for i := 0; i < 100; i++ {
		tb.Write(chunk)
	}
	tb.Write([]byte("\nlast line\n"))
	if len(tb.b) != maxOutput {
		t.Fatalf("kept %d bytes, want %d", len(tb.b), maxOutput)
	}
	if !bytes.HasSuffix(tb.b, []byte("\nlast line\n")) {
		t.Fatalf("the last line is lost: %q", tb.b[len(tb.b)-20:])
	}
}
