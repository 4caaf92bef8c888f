// Package cfgsync holds the pure parts of configuration sync
// (docs/config-sync.md): an object cut into CONFIG chunks and put back
// together, the secondary's decision on an object that came in, the
// reasons a record is refused, and the line diff of --dry-run. The
// daemon (internal/daemon/cfgsync.go) does the files and the sending.
package cfgsync

import (
	"crypto/sha256"

	"github.com/carpd/carpd/internal/ctsync/wire"
)

// Kinds of objects.
const (
	KindUCI  = "uci"  // a UCI package: config_dir/NAME
	KindFile = "file" // a plain file, by its absolute path
)

// ChunkData is the data one chunk carries: with the longest name it fits
// a frame of the default MTU.
const ChunkData = 768

// MaxSize bounds one object.
const MaxSize = wire.MaxConfigSize

// OwnPackage is carpd's own UCI package: its per-router options (advskew,
// the peer's address, the key) are never synced.
const OwnPackage = "carpd"

// Hash is an object's SHA-256.
type Hash = [wire.ConfigHashLen]byte

// Sum returns data's hash.
func Sum(data []byte) Hash { return sha256.Sum256(data) }

// Hex is h in hex; "" for the zero hash (no object).
func Hex(h Hash) string {
	if h == (Hash{}) {
		return ""
	}
	const digits = "0123456789abcdef"
	var b [2 * len(h)]byte
	for i, x := range h {
		b[2*i], b[2*i+1] = digits[x>>4], digits[x&15]
	}
	return string(b[:])
}

// Reasons a configuration record is refused: the keys of the status's
// refused map, and (by index) the reason byte of a CONFIG_ACK.
const (
	ReasonMalformed = "malformed"  // the record does not parse
	ReasonNotListed = "not_listed" // the name is not in the receiver's own list
	ReasonTooLarge  = "too_large"  // over MaxSize
	ReasonUCI       = "bad_uci"    // a UCI package that does not parse
	ReasonOwn       = "own_config" // carpd's own package
	ReasonSymlink   = "symlink"    // the receiver's path is a symbolic link
	ReasonHash      = "hash"       // the chunks do not make the announced hash
	ReasonRole      = "role"       // the receiver is not a secondary
	ReasonWrite     = "write"      // the receiver could not write it
)

var reasons = [...]string{"", ReasonMalformed, ReasonNotListed, ReasonTooLarge, ReasonUCI, ReasonOwn, ReasonSymlink,
	ReasonHash, ReasonRole, ReasonWrite}

// ReasonCode is reason's byte in a CONFIG_ACK (0: none or unknown).
func ReasonCode(reason string) uint8 {
	for i, r := range reasons {
		if r == reason {
			return uint8(i)
		}
	}
	return 0
}

// ReasonName is ReasonCode's inverse; an unknown code is "refused".
func ReasonName(code uint8) string {
	if int(code) < len(reasons) && code != 0 {
		return reasons[code]
	}
	return "refused"
}

// The status of a CONFIG_ACK.
const (
	AckWritten  = 1 // written (and reloaded)
	AckSame     = 2 // the receiver's copy was the same already
	AckConflict = 3 // its copy was edited since the last sync: kept
	AckRefused  = 4 // refused (Reason)
)

// Chunks cuts an object into CONFIG records of at most ChunkData bytes.
func Chunks(name string, file, force bool, data []byte) []wire.Record {
	var flags uint8
	if file {
		flags |= wire.ConfigFile
	}
	if force {
		flags |= wire.ConfigForce
	}
	h := Sum(data)
	n := (len(data) + ChunkData - 1) / ChunkData
	out := make([]wire.Record, 0, max(n, 1))
	for off := 0; off < len(data) || off == 0; off += ChunkData {
		end := min(off+ChunkData, len(data))
		out = append(out, wire.Record{Type: wire.RecordConfig, Config: &wire.ConfigChunk{Flags: flags, Name: name, Hash: h,
			Total: uint32(len(data)), Offset: uint32(off), Data: data[off:end]}})
		if end == len(data) {
			break
		}
	}
	return out
}

// Object is a whole object put back together.
type Object struct {
	Name  string
	File  bool
	Force bool
	Hash  Hash
	Data  []byte
}

// Assembler puts chunks back together, one object per name at a time: a
// chunk of another version (hash) of the name starts over. The caller
// passes only names of its own list, which bounds the memory to that
// many objects of MaxSize.
type Assembler struct {
	parts map[string]*part
}

type part struct {
	hash  Hash
	flags uint8
	buf   []byte
	got   []uint64 // a bit per byte of buf received
	have  int      // bits set in got
}

// Add takes a chunk in. It returns the object once its last byte is in
// and the whole makes the announced hash; a refusal reason when the
// object is too large or does not make its hash (the chunks so far are
// dropped); nil and "" otherwise.
func (a *Assembler) Add(c *wire.ConfigChunk) (*Object, string) {
	if c.Total > MaxSize {
		delete(a.parts, c.Name)
		return nil, ReasonTooLarge
	}
	if uint64(c.Offset)+uint64(len(c.Data)) > uint64(c.Total) {
		return nil, ReasonMalformed
	}
	if a.parts == nil {
		a.parts = map[string]*part{}
	}
	p := a.parts[c.Name]
	if p == nil || p.hash != c.Hash || p.flags != c.Flags || len(p.buf) != int(c.Total) {
		p = &part{hash: c.Hash, flags: c.Flags, buf: make([]byte, c.Total), got: make([]uint64, (c.Total+63)/64)}
		a.parts[c.Name] = p
	}
	copy(p.buf[c.Offset:], c.Data)
	for i := int(c.Offset); i < int(c.Offset)+len(c.Data); i++ {
		if w, bit := i/64, uint64(1)<<(i%64); p.got[w]&bit == 0 {
			p.got[w] |= bit
			p.have++
		}
	}
	if p.have < len(p.buf) {
		return nil, ""
	}
	delete(a.parts, c.Name)
	if Sum(p.buf) != p.hash {
		return nil, ReasonHash
	}
	return &Object{Name: c.Name, File: p.flags&wire.ConfigFile != 0, Force: p.flags&wire.ConfigForce != 0, Hash: p.hash, Data: p.buf}, ""
}

// Pending is the number of objects partly received.
func (a *Assembler) Pending() int { return len(a.parts) }

// Action is what the secondary does with an object that came in.
type Action int

const (
	Write    Action = iota // write it (and reload)
	Same                   // its copy is the same already: nothing to do
	Conflict               // its copy was edited since the last sync: keep it, report
)

// Decide is the secondary's rule for an object with hash in: local is
// the hash of its own copy (zero: it has none), last the hash it last
// wrote or found the same (zero: none known). A copy that is neither the
// last one synced nor absent was edited here: it stays, and the conflict
// is reported, unless forced (carpd config-sync --force, here or on the
// primary). A copy that was there before any sync counts as edited.
func Decide(in, local, last Hash, force bool) Action {
	switch {
	case local == in:
		return Same
	case local == Hash{} || local == last || force:
		return Write
	}
	return Conflict
}
