package apk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// sharedPackage is an uncompressed package whose ADB block is small but
// whose values point at the same objects many times: dirs directories that
// are one directory object, whose file array lists one file object files
// times (empty files, so no DATA block is needed), and deps dependencies
// that are one object of depSlots slots. A walk that follows every
// reference does dirs × files entries and deps × depSlots slots of work.
func sharedPackage(t testing.TB, dirs, files, deps, depSlots int) []byte {
	t.Helper()
	b := newBuilder()
	fi := make([]val, fiMax)
	fi[fiName] = b.blob([]byte("f"))
	fi[fiHashes] = b.blob(make([]byte, 32))
	file, fileList := b.object(fi), make([]val, 1+files)
	for i := range files {
		fileList[1+i] = file
	}
	di := make([]val, diMax)
	di[diName] = b.blob([]byte("d"))
	di[diFiles] = b.object(fileList)
	dir, dirList := b.object(di), make([]val, 1+dirs)
	for i := range dirs {
		dirList[1+i] = dir
	}
	info := make([]val, piMax)
	info[piName] = b.blob([]byte("x"))
	if deps > 0 {
		dep := make([]val, depSlots)
		dep[depName] = b.blob([]byte("libc"))
		dep[depSlots-1] = mkval(typeInt, 1) // keeps the object depSlots long
		one, depList := b.object(dep), make([]val, 1+deps)
		for i := range deps {
			depList[1+i] = one
		}
		info[piDepends] = b.object(depList)
	}
	pkg := make([]val, pkgMax)
	pkg[pkgInfo] = b.object(info)
	pkg[pkgPaths] = b.object(dirList)
	adb, err := b.finish(b.object(pkg))
	if err != nil {
		t.Fatal(err)
	}
	stream := binary.LittleEndian.AppendUint32([]byte(magicADB), schemaPackage)
	if stream, err = appendBlock(stream, blockADB, adb); err != nil {
		t.Fatal(err)
	}
	return stream
}

// TestReadSharedObjects: a few KiB of ADB block that reference the same
// objects over and over are refused (errWork) after work linear in their
// size, instead of a million entries (1000 directories of the same 1000
// files from 8 KiB) or 64 million slots decoded (8000 dependencies that
// are one 8000-slot object, from 64 KiB). Sharing within the bound still
// reads: two directories with the same file list.
func TestReadSharedObjects(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		dirs, files, deps, depSlots int
	}{
		{"1000 directories of the same 1000 files", 1000, 1000, 0, 0},
		{"8000 dependencies on one 8000-slot object", 1, 1, 8000, 8000},
	} {
		in := sharedPackage(t, tc.dirs, tc.files, tc.deps, tc.depSlots)
		start := time.Now()
		c, err := Read(in)
		took := time.Since(start)
		if !errors.Is(err, errWork) {
			n := 0
			if c != nil {
				n = len(c.Entries)
			}
			t.Fatalf("%s (%d bytes): Read took %v and gave %d entries, err %v; want errWork", tc.name, len(in), took, n, err)
		}
		t.Logf("%s (%d bytes): refused in %v: %v", tc.name, len(in), took, err)
	}
	c, err := Read(sharedPackage(t, 2, 3, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != 2*(1+3) {
		t.Fatalf("%d entries, want 8", len(c.Entries))
	}
}

// TestReadReusesInflater: the pooled deflate reader starts clean after a
// corrupt stream and after a good one (the same package reads the same).
func TestReadReusesInflater(t *testing.T) {
	good, err := goldenPackage().Build()
	if err != nil {
		t.Fatal(err)
	}
	want, err := Read(good.APK)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(magicDeflate), 0xff, 0xff, 0xff)
	for range 3 {
		if _, err := Read(bad); err == nil {
			t.Fatal("a corrupt deflate stream was read")
		}
		c, err := Read(good.APK)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.ADB, want.ADB) || len(c.Entries) != len(want.Entries) {
			t.Fatalf("read %d entries, ADB %x; want %d, %x", len(c.Entries), c.ADB, len(want.Entries), want.ADB)
		}
	}
}
