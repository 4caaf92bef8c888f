package ctsync

// Configuration records (docs/config-sync.md): the daemon's config sync
// hands the engine CONFIG chunks and CONFIG_ACK answers to send, and
// gets the peer's through Config.OnConfig. They go in frames of their
// own, within the byte cap, with the session's keys and replay
// protection; the engine does not resend them: the sender of an object
// sends it again until it is answered (the receiver keeps the chunks it
// has, so a retry fills in only what was lost).

import (
	"time"

	"github.com/carpd/carpd/internal/ctsync/wire"
)

const (
	// maxConfigQueue bounds the records waiting to go: more than two
	// objects of the largest size in chunks of cfgsync.ChunkData.
	maxConfigQueue = 1024
	// maxConfigFrames bounds the frames of configuration one tick sends.
	maxConfigFrames = 64
)

// SendConfig queues CONFIG and CONFIG_ACK records for the peer, sent
// from the next tick on while the session is up. It reports false, and
// queues nothing, when they do not fit the queue. Safe from any
// goroutine; it never blocks.
func (e *Engine) SendConfig(recs []wire.Record) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.configOut)+len(recs) > maxConfigQueue {
		return false
	}
	e.configOut = append(e.configOut, recs...)
	return true
}

// sendConfig sends queued configuration records, as many a frame as fit,
// within the byte cap.
func (e *Engine) sendConfig(now time.Time) {
	for n := 0; n < maxConfigFrames; n++ {
		e.mu.Lock()
		q := e.configOut
		e.mu.Unlock()
		if len(q) == 0 || !e.canSend(now) || (e.lim != nil && e.lim.TokensAt(now) < float64(e.cfg.MTU+udpIPOverhead)) {
			return
		}
		var enc wire.Encoder
		enc.Limit = e.payloadLimit()
		enc.Reset(make([]byte, 0, e.cfg.MTU))
		i := 0
		for ; i < len(q); i++ {
			if err := enc.Append(&q[i]); err != nil {
				if enc.Len() == 0 {
					i++ // cannot go at all: dropped
				}
				break
			}
		}
		if enc.Len() > 0 {
			if _, ok := e.send(enc.Bytes(), now, false); !ok {
				return
			}
		}
		e.mu.Lock()
		e.configOut = e.configOut[i:]
		if len(e.configOut) == 0 {
			e.configOut = nil
		}
		e.mu.Unlock()
	}
}
