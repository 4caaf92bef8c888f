package wire

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Passphrase rules of KeyFromConfig.
const (
	// MinPassphraseLen is the shortest passphrase accepted, in characters.
	MinPassphraseLen = 16
	// minDistinctChars: fewer different characters than this is a pattern,
	// not a passphrase.
	minDistinctChars = 6

	labelPassphraseSalt = "carpd ctsync v1 passphrase"
	labelPassphraseKey  = "carpd ctsync v1 key"
)

// keyHint tells the admin how to make a good key.
const keyHint = `generate a random key with: head -c32 /dev/urandom | hexdump -e '32/1 "%02x"'`

// KeyFromConfig turns the configured sync key into the pre-shared key.
// Exactly 64 hex digits are the key itself. Anything else is a passphrase,
// stretched with HKDF-SHA256; passphrases shorter than MinPassphraseLen
// characters or made of an obvious pattern (one character, few distinct
// characters, a chunk repeated, a run like "abcdef...") are refused
// with ErrWeakKey and a message that says why and how to generate a key.
//
// HKDF is not a password hash: a passphrase is only as strong as its
// entropy against an offline guess from one captured frame. Prefer a
// random hex key.
func KeyFromConfig(s string) ([KeyLen]byte, error) {
	var key [KeyLen]byte
	s = strings.TrimSpace(s)
	if len(s) == 2*KeyLen {
		if raw, err := hex.DecodeString(s); err == nil {
			if why := weakPattern(raw, "bytes"); why != "" {
				return key, fmt.Errorf("%w: the hex key %s; %s", ErrWeakKey, why, keyHint)
			}
			copy(key[:], raw)
			return key, nil
		}
	}
	if s == "" {
		return key, fmt.Errorf("%w: the key is empty; %s", ErrWeakKey, keyHint)
	}
	if n := utf8.RuneCountInString(s); n < MinPassphraseLen {
		return key, fmt.Errorf("%w: the passphrase has %d characters, at least %d are needed; %s",
			ErrWeakKey, n, MinPassphraseLen, keyHint)
	}
	if why := weakPattern([]rune(s), "characters"); why != "" {
		return key, fmt.Errorf("%w: the passphrase %s; %s", ErrWeakKey, why, keyHint)
	}
	k, err := hkdf.Key(sha256.New, []byte(s), []byte(labelPassphraseSalt), labelPassphraseKey, KeyLen)
	if err != nil {
		return key, fmt.Errorf("wire: %w", err)
	}
	copy(key[:], k)
	return key, nil
}

// weakPattern says what is obviously wrong with a key or passphrase (of
// at least minDistinctChars elements), or returns "". unit names the
// elements in the message.
func weakPattern[T byte | rune](s []T, unit string) string {
	distinct := make(map[T]struct{}, len(s))
	for _, c := range s {
		distinct[c] = struct{}{}
	}
	switch {
	case len(distinct) == 1:
		return "repeats a single character"
	case len(distinct) < minDistinctChars:
		return fmt.Sprintf("uses only %d different %s", len(distinct), unit)
	}
	// A chunk repeated at least twice: "passwordpassword", "abcabcab".
	for p := 2; p <= len(s)/2; p++ {
		repeated := true
		for i := p; i < len(s); i++ {
			if s[i] != s[i-p] {
				repeated = false
				break
			}
		}
		if repeated {
			return fmt.Sprintf("repeats a chunk of %d %s", p, unit)
		}
	}
	// A run with a constant step, like "abcdefgh..." or "9876543...".
	step := int64(s[1]) - int64(s[0])
	run := step == 1 || step == -1
	for i := 2; run && i < len(s); i++ {
		run = int64(s[i])-int64(s[i-1]) == step
	}
	if run {
		return "is a simple sequence"
	}
	return ""
}
