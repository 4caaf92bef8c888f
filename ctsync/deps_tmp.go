//go:build deps

package ctsync

import (
	_ "github.com/ti-mo/conntrack"
	_ "github.com/ti-mo/netfilter"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/crypto/hkdf"
	_ "golang.org/x/time/rate"
)
