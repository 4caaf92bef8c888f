// Package apk writes and reads apk-tools v3 packages (.apk in the "ADB"
// format), the package format of OpenWrt 25.12 and later, without apk-tools
// or the OpenWrt SDK.
//
// The format is apk-tools' doc/apk-v3.5 ("apk v3 - overview of apk v3
// format") and doc/apk-package.5 (the package fields); where those pages are
// silent (alignment, de-duplication, which values are typed object rather
// than array, the unique id) this package follows what `apk mkpkg` of
// apk-tools 3.0 writes, so that for the same tree and SOURCE_DATE_EPOCH the
// uncompressed stream is byte for byte the one `apk mkpkg` produces
// (TestMatchesMkpkg checks it against a package apk-tools 3.0.6 made). What
// OpenWrt puts inside a package (include/package-pack.mk: the
// /lib/apk/packages/<name>.list and .conffiles files and the
// post-install/post-upgrade/pre-deinstall scripts calling default_postinst
// and default_prerm) is in openwrt.go.
//
// A package file is
//
//	"ADBd" raw-deflate( file header, ADB block, [SIG blocks], DATA blocks )
//
// (or "ADB." followed by the same, uncompressed). The ADB block holds the
// metadata tree of schema "pckg": package info, directories with their
// files (mode, owner, size, mtime, SHA-256), scripts. Each DATA block holds
// one regular file's bytes, named by its 1-based directory and file index.
//
// Packages are written unsigned, as OpenWrt 25 builds them: its feeds sign
// the index (packages.adb), not the packages, and a package file installed
// by hand needs `apk add --allow-untrusted`. Signing one would need a SIG
// block after the ADB block: sign_ver 0, hash_alg, the key's 16-byte id and
// an RSA or ECDSA signature over a small payload holding the SHA-512 of the
// ADB block (apk-tools src/adb.c adb_trust_write_signatures).
//
// Read is the decoder the tests use on every produced package; it checks
// the block order, every offset and length, the file hashes and sizes, and
// that every non-empty file has its DATA block.
package apk
