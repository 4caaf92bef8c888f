package apk

import (
	"bytes"
	"compress/flate"
	"io"
	"os"
	"testing"
)

// goldenPackage is the tree testdata/mkpkg-3.0.6.apk was made from with
// apk-tools 3.0.6 (no xattrs, files owned by root, every mtime
// 1700000000):
//
//	SOURCE_DATE_EPOCH=1700000000 apk mkpkg --info name:carpd \
//	  --info version:1.0.0-r1 --info arch:mips_24kc --info description:desc \
//	  --info license:BSD-2-Clause --info origin:package/carpd \
//	  --info url:https://x --info depends:libc \
//	  --script post-install:post --files root --output mkpkg-3.0.6.apk
func goldenPackage() *Package {
	return &Package{
		Info: Info{
			Name: "carpd", Version: "1.0.0-r1", Description: "desc", Arch: "mips_24kc",
			License: "BSD-2-Clause", Origin: "package/carpd", URL: "https://x", Depends: []string{"libc"},
		},
		Files: []File{
			{Path: "/usr/sbin/carpd", Mode: 0o755, Data: []byte("bin\n")},
			{Path: "/etc/config/carpd", Mode: 0o600, Data: []byte("conf\n")},
			{Path: "/etc/init.d/carpd", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		},
		Scripts:         Scripts{PostInstall: "#!/bin/sh\necho hi\n"},
		SourceDateEpoch: 1700000000,
	}
}

// TestMatchesMkpkg: for the same tree the uncompressed stream is byte for
// byte what apk-tools' own mkpkg wrote (only the deflate stream differs:
// Go's compress/flate, not zlib).
func TestMatchesMkpkg(t *testing.T) {
	ref, err := os.ReadFile("testdata/mkpkg-3.0.6.apk")
	if err != nil {
		t.Fatal(err)
	}
	if string(ref[:4]) != magicDeflate {
		t.Fatalf("golden file starts %q", ref[:4])
	}
	want, err := io.ReadAll(flate.NewReader(bytes.NewReader(ref[4:])))
	if err != nil {
		t.Fatal(err)
	}
	b, err := goldenPackage().Build()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Stream, want) {
		for i := range min(len(b.Stream), len(want)) {
			if b.Stream[i] != want[i] {
				t.Fatalf("stream differs from apk mkpkg's at byte %d of %d/%d:\n got % x\nwant % x",
					i, len(b.Stream), len(want), b.Stream[i:min(i+32, len(b.Stream))], want[i:min(i+32, len(want))])
			}
		}
		t.Fatalf("stream is %d bytes, apk mkpkg's %d", len(b.Stream), len(want))
	}
}
