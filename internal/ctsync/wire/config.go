package wire

import (
	"encoding/binary"
	"math"
)

// Configuration records (docs/sync-protocol.md, docs/config-sync.md):
// extension control records 18 (a chunk of a UCI package or a file the
// primary router sends) and 19 (the secondary's answer for one object).
const (
	ctlConfig    = 18
	ctlConfigAck = 19
)

// Limits of the configuration records.
const (
	// MaxConfigSize bounds one synced object (a UCI package or a file):
	// the receiver refuses a larger one (its chunks still decode).
	MaxConfigSize = 256 << 10
	// MaxConfigName bounds an object's name (a package name or a path).
	MaxConfigName = 255
	// ConfigHashLen is the length of an object's hash (SHA-256).
	ConfigHashLen = 32
)

// ConfigChunk flags.
const (
	ConfigFile  = 1 // a plain file (else a UCI package)
	ConfigForce = 2 // the primary's admin forced it: a local edit is overwritten
)

// ConfigChunk is part of an object: Data at Offset of the Total bytes
// whose SHA-256 is Hash.
type ConfigChunk struct {
	Flags  uint8
	Name   string
	Hash   [ConfigHashLen]byte
	Total  uint32 // the receiver enforces its size limit (MaxConfigSize)
	Offset uint32
	Data   []byte // Offset+len(Data) <= Total; empty only when Total is 0
}

// ConfigAck is the secondary's answer for an object: Status (the
// receiver's code, a cfgsync status), Hash the object it answers, Local
// the hash of its own copy (zero: none).
type ConfigAck struct {
	Status uint8
	Reason uint8
	Name   string
	Hash   [ConfigHashLen]byte
	Local  [ConfigHashLen]byte
}

// ConfigNameOK reports whether a configuration record can carry name:
// 1 to MaxConfigName bytes, '!' to '~'.
func ConfigNameOK(name string) bool {
	if len(name) == 0 || len(name) > MaxConfigName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < '!' || c > '~' {
			return false
		}
	}
	return true
}

func configChunkOK(c *ConfigChunk) bool {
	if c == nil {
		return false
	}
	end := uint64(c.Offset) + uint64(len(c.Data))
	return ConfigNameOK(c.Name) && c.Flags&^(ConfigFile|ConfigForce) == 0 && end <= uint64(c.Total) && (len(c.Data) > 0 || c.Total == 0)
}

// appendConfig writes a configuration chunk: 000 10010, uvarint body
// length, body: byte flags, byte name length, name, 32-byte hash,
// uvarint total, uvarint offset, data (the rest of the body).
func appendConfig(b []byte, c *ConfigChunk) ([]byte, error) {
	if !configChunkOK(c) {
		return b, ErrConfig
	}
	var v [2 * binary.MaxVarintLen32]byte
	n := binary.PutUvarint(v[:], uint64(c.Total))
	n += binary.PutUvarint(v[n:], uint64(c.Offset))
	return appendConfigBody(b, ctlConfig, []byte{c.Flags}, c.Name, c.Hash[:], v[:n], c.Data)
}

// appendConfigAck writes a configuration answer: 000 10011, uvarint body
// length, body: byte status, byte reason, byte name length, name, hash,
// local hash.
func appendConfigAck(b []byte, a *ConfigAck) ([]byte, error) {
	if a == nil {
		return b, ErrConfig
	}
	return appendConfigBody(b, ctlConfigAck, []byte{a.Status, a.Reason}, a.Name, a.Hash[:], a.Local[:], nil)
}

// appendConfigBody writes a record of type ctl whose body is head, the
// name (its length first), then the rest.
func appendConfigBody(b []byte, ctl byte, head []byte, name string, rest ...[]byte) ([]byte, error) {
	body := len(head) + 1 + len(name)
	for _, r := range rest {
		body += len(r)
	}
	if !ConfigNameOK(name) || body > maxExtBody {
		return b, ErrConfig
	}
	b = append(b, kindControl<<kindShift|ctl)
	b = binary.AppendUvarint(b, uint64(body))
	b = append(append(b, head...), byte(len(name)))
	b = append(b, name...)
	for _, r := range rest {
		b = append(b, r...)
	}
	return b, nil
}

// configHead reads the start of a configuration record: the body length,
// n bytes, the name and a hash. It returns where the body ends (-1 after
// a failure).
func (d *Decoder) configHead(head []byte, name *string, h *[ConfigHashLen]byte) int {
	size := d.uvarintMax(maxExtBody)
	end := d.off + int(size)
	if d.rerr != nil || end > len(d.b) {
		d.rerr = ErrConfig
		d.off = len(d.b)
		return -1
	}
	copy(head, d.bytes(len(head)))
	*name = string(d.bytes(int(d.u8())))
	copy(h[:], d.bytes(ConfigHashLen))
	return end
}

// configEnd checks that a configuration record's fields ended within its
// body and moves past the body.
func (d *Decoder) configEnd(end int, ok bool) {
	if d.rerr != nil || d.off > end || !ok {
		d.rerr = ErrConfig
		d.off = len(d.b)
		return
	}
	d.off = end
}

// decodeConfig reads a configuration chunk's body. Its Data is a copy.
func (d *Decoder) decodeConfig() {
	r := &d.rec
	r.Type = RecordConfig
	c := new(ConfigChunk)
	r.Config = c
	var head [1]byte
	end := d.configHead(head[:], &c.Name, &c.Hash)
	if end < 0 {
		return
	}
	c.Flags = head[0]
	c.Total = uint32(d.uvarintMax(math.MaxUint32))
	c.Offset = uint32(d.uvarintMax(math.MaxUint32))
	if d.rerr == nil && d.off <= end {
		c.Data = append([]byte(nil), d.b[d.off:end]...)
		d.off = end
	}
	d.configEnd(end, configChunkOK(c))
}

// decodeConfigAck reads a configuration answer's body; bytes after the
// local hash within the body are skipped (room for later fields).
func (d *Decoder) decodeConfigAck() {
	r := &d.rec
	r.Type = RecordConfigAck
	a := new(ConfigAck)
	r.ConfigAck = a
	var head [2]byte
	end := d.configHead(head[:], &a.Name, &a.Hash)
	if end < 0 {
		return
	}
	a.Status, a.Reason = head[0], head[1]
	copy(a.Local[:], d.bytes(ConfigHashLen))
	d.configEnd(end, ConfigNameOK(a.Name))
}
