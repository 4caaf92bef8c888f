package vip

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzARPPacket decodes arpPacket: any input must either fail to decode or
// survive unmarshal → marshal → unmarshal unchanged.
func FuzzARPPacket(f *testing.F) {
	f.Add(goldenARPRequest[ethHeaderLen:]) // with Ethernet padding
	f.Add(goldenARPReply[ethHeaderLen : ethHeaderLen+arpPacketLen])
	f.Add(goldenARPRequest[ethHeaderLen : ethHeaderLen+arpPacketLen-1]) // truncated
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, b []byte) {
		var p1 arpPacket
		if err := p1.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := p1.MarshalBinary()
		if err != nil {
			t.Fatalf("marshal of a decoded packet: %v", err)
		}
		var p2 arpPacket
		if err := p2.UnmarshalBinary(out); err != nil {
			t.Fatalf("unmarshal of a marshalled packet: %v", err)
		}
		if diff := cmp.Diff(p1, p2, addrComparer); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzNeighborAdvert decodes neighborAdvert (an IPv6 packet carrying an NA)
// with the same round-trip property.
func FuzzNeighborAdvert(f *testing.F) {
	f.Add(goldenNA[ethHeaderLen:])
	f.Add(goldenNA[ethHeaderLen : len(goldenNA)-1]) // truncated option
	bare, err := neighborAdvert{Source: testV6, Destination: ipv6AllNodes, Target: testV6}.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bare) // no options
	// Regression seed: an option with length 0 must be rejected, not loop
	// forever (RFC 4861, Section 4.6: "nodes MUST silently discard an ND
	// packet that contains an option with length zero").
	zero := append([]byte(nil), goldenNA[ethHeaderLen:]...)
	zero[ipv6HeaderLen+naLen+1] = 0
	f.Add(fixChecksum(zero))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, b []byte) {
		// Random input almost never has a valid checksum, which would
		// keep the fuzzer at the door; so try the input as it is and
		// with its checksum repaired.
		for _, in := range [][]byte{b, fixChecksum(append([]byte(nil), b...))} {
			var na1 neighborAdvert
			if err := na1.UnmarshalBinary(in); err != nil {
				continue
			}
			out, err := na1.MarshalBinary()
			if err != nil {
				t.Fatalf("marshal of a decoded packet: %v", err)
			}
			var na2 neighborAdvert
			if err := na2.UnmarshalBinary(out); err != nil {
				t.Fatalf("unmarshal of a marshalled packet: %v", err)
			}
			if diff := cmp.Diff(na1, na2, addrComparer); diff != "" {
				t.Fatalf("round trip (-first +second):\n%s", diff)
			}
		}
	})
}
