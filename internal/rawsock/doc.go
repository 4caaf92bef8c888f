// Package rawsock is an AF_PACKET socket bound to one interface, for
// writing (and reading) whole Ethernet frames: vip's gratuitous ARP and
// unsolicited neighbour advertisements, CARP's frames with a virtual MAC.
// It replaces github.com/mdlayher/packet (SOCK_RAW only) and is on the
// runtime's netpoller: deadlines and Close end a blocked read or write.
// Linux only.
package rawsock
