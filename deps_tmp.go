//go:build deps

package main

import (
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/jsimonetti/rtnetlink/v2"
	_ "github.com/mdlayher/netlink"
	_ "github.com/mdlayher/packet"
	_ "golang.org/x/net/ipv4"
	_ "golang.org/x/net/ipv6"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/sys/unix"
)
