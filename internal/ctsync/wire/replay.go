package wire

// Replay window sizes: a ring of replayBlocks 64-bit words. One word is the
// slack the ring needs to slide, so the window is one word short of the
// ring (the design of RFC 6479 and WireGuard's replay filter).
const (
	replayBlockBits = 64
	replayBlocks    = 32
	// ReplayWindowSize is how far behind the highest accepted packet
	// number a packet may arrive and still be accepted once.
	ReplayWindowSize = (replayBlocks - 1) * replayBlockBits // 1984
)

// ReplayWindow is a sliding-window bitmap of accepted packet numbers
// (docs/sync-protocol.md#handshake). The zero value is empty and accepts any packet number once. It is
// not safe for concurrent use (Session guards its windows).
type ReplayWindow struct {
	last uint64 // highest accepted packet number
	ring [replayBlocks]uint64
}

// Check reports whether pn would be accepted: newer than any seen, or
// inside the window and not seen yet. It changes nothing, so a receiver
// can check before spending an AEAD open on the frame.
func (w *ReplayWindow) Check(pn uint64) bool {
	if pn > w.last {
		return true
	}
	if w.last-pn >= ReplayWindowSize {
		return false
	}
	return w.ring[pn/replayBlockBits%replayBlocks]&(1<<(pn%replayBlockBits)) == 0
}

// Accept records pn if Check allows it and reports whether it did. Call it
// only after the frame authenticated.
func (w *ReplayWindow) Accept(pn uint64) bool {
	if !w.Check(pn) {
		return false
	}
	if pn > w.last {
		cur, next := w.last/replayBlockBits, pn/replayBlockBits
		n := next - cur
		if n > replayBlocks {
			n = replayBlocks
		}
		for i := uint64(1); i <= n; i++ {
			w.ring[(cur+i)%replayBlocks] = 0
		}
		w.last = pn
	}
	w.ring[pn/replayBlockBits%replayBlocks] |= 1 << (pn % replayBlockBits)
	return true
}

// reset empties the window.
func (w *ReplayWindow) reset() { *w = ReplayWindow{} }
