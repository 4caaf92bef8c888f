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
	body := 2 + len(c.Name) + ConfigHashLen + n + len(c.Data)
	if body > maxExtBody {
		return b, ErrConfig
	}
	b = append(b, kindControl<<kindShift|ctlConfig)
	b = binary.AppendUvarint(b, uint64(body))
	b = append(b, c.Flags, byte(len(c.Name)))
	b = append(b, c.Name...)
	b = append(b, c.Hash[:]...)
	b = append(b, v[:n]...)
	return append(b, c.Data...), nil
}

// appendConfigAck writes a configuration answer: 000 10011, uvarint body
// length, body: byte status, byte reason, byte name length, name, hash,
// local hash.
func appendConfigAck(b []byte, a *ConfigAck) ([]byte, error) {
	if !ConfigNameOK(a.Name) {
		return b, ErrConfig
	}
	b = append(b, kindControl<<kindShift|ctlConfigAck)
	b = binary.AppendUvarint(b, uint64(3+len(a.Name)+2*ConfigHashLen))
	b = append(b, a.Status, a.Reason, byte(len(a.Name)))
	b = append(b, a.Name...)
	b = append(b, a.Hash[:]...)
	return append(b, a.Local[:]...), nil
}

// extBody reads an extension record's body length and returns where the
// body ends, or -1 after failing with err.
func (d *Decoder) extBody(err error) int {
	size := d.uvarintMax(maxExtBody)
	if d.rerr != nil {
		d.rerr = err
		return -1
	}
	end := d.off + int(size)
	if end > len(d.b) {
		d.fail(err)
		return -1
	}
	return end
}

// decodeConfig reads a configuration chunk's body. Its Data is a copy.
func (d *Decoder) decodeConfig() {
	r := &d.rec
	r.Type = RecordConfig
	end := d.extBody(ErrConfig)
	if end < 0 {
		return
	}
	c := &r.Config
	c.Flags = d.u8()
	c.Name = string(d.bytes(int(d.u8())))
	copy(c.Hash[:], d.bytes(ConfigHashLen))
	c.Total = uint32(d.uvarintMax(math.MaxUint32))
	c.Offset = uint32(d.uvarintMax(math.MaxUint32))
	if d.rerr != nil || d.off > end {
		d.rerr = ErrConfig
		d.off = len(d.b)
		return
	}
	c.Data = append([]byte(nil), d.b[d.off:end]...)
	d.off = end
	if !configChunkOK(c) {
		d.fail(ErrConfig)
	}
}

// decodeConfigAck reads a configuration answer's body; bytes after the
// local hash within the body are skipped (room for later fields).
func (d *Decoder) decodeConfigAck() {
	r := &d.rec
	r.Type = RecordConfigAck
	end := d.extBody(ErrConfig)
	if end < 0 {
		return
	}
	a := &r.ConfigAck
	a.Status, a.Reason = d.u8(), d.u8()
	a.Name = string(d.bytes(int(d.u8())))
	copy(a.Hash[:], d.bytes(ConfigHashLen))
	copy(a.Local[:], d.bytes(ConfigHashLen))
	if d.rerr != nil || d.off > end || !ConfigNameOK(a.Name) {
		d.rerr = ErrConfig
		d.off = len(d.b)
		return
	}
	d.off = end
}
