package wire

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestKeyFromConfigHex(t *testing.T) {
	const h = "8f3a1c5e9b0d47e2a6c3f18b5d2e7a9c04b6e1f3a8d5c2e7b9f0a1d4c6e8b3a5"
	want, _ := hex.DecodeString(h)
	for _, s := range []string{h, strings.ToUpper(h), "  " + h + "\n"} {
		k, err := KeyFromConfig(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if string(k[:]) != string(want) {
			t.Fatalf("%q: key %x", s, k)
		}
	}
}

func TestKeyFromConfigPassphrase(t *testing.T) {
	p := "correct horse battery staple"
	k1, err := KeyFromConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := KeyFromConfig(p + " ")
	if k1 != k2 {
		t.Fatal("surrounding space changed the key")
	}
	k3, _ := KeyFromConfig("correct horse battery stapler")
	if k1 == k3 || k1 == ([KeyLen]byte{}) {
		t.Fatal("passphrase key not derived")
	}
	// A 64-character string that is not hex is a passphrase, not an error.
	long := strings.Repeat("zq", 16) + strings.Repeat("xkcd-936", 4)
	if _, err := KeyFromConfig(long); err != nil {
		t.Fatalf("64-char passphrase: %v", err)
	}
	// 16 characters in another script count as 16.
	if _, err := KeyFromConfig("пароль-для-sync!"); err != nil {
		t.Fatalf("cyrillic passphrase: %v", err)
	}
	// Golden (checked against an independent HKDF-SHA256): the derivation
	// is part of the config format.
	if got := hex.EncodeToString(k1[:]); got != goldenPassphraseKey {
		t.Errorf("derived key %s, want %s", got, goldenPassphraseKey)
	}
}

const goldenPassphraseKey = "6bd4ef010825cbd84f7044de27363593e76fcf4070833d8d18a4a0fc4b96fade"

func TestKeyFromConfigWeak(t *testing.T) {
	cases := []struct{ in, why string }{
		{"", "empty"},
		{"   ", "empty"},
		{"hunter2", "7 characters, at least 16"},
		{"fifteen chars!!", "15 characters"},
		{"aaaaaaaaaaaaaaaaaaaa", "single character"},
		{"abababababababababab", "only 2 different"},
		{"passwordpassword", "repeats a chunk of 8 characters"},
		{"abcdefghijklmnopqrst", "simple sequence"},
		{"zyxwvutsrqponmlkjihg", "simple sequence"},
		{"0123456789012345678901", "repeats a chunk of 10 characters"},
		{"Tr0ub4dor&3Tr0ub4dor&3", "repeats a chunk of 11"},
		{strings.Repeat("0", 64), "hex key repeats a single character"},
		{strings.Repeat("0123456789abcdef", 4), "hex key repeats a chunk of 8 bytes"},
		{"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex key is a simple sequence"},
	}
	for _, c := range cases {
		_, err := KeyFromConfig(c.in)
		if !errors.Is(err, ErrWeakKey) {
			t.Errorf("%q: err %v, want ErrWeakKey", c.in, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.why) {
			t.Errorf("%q: message %q does not say %q", c.in, msg, c.why)
		}
		if !strings.Contains(msg, `head -c32 /dev/urandom | hexdump -e '32/1 "%02x"'`) {
			t.Errorf("%q: message %q does not say how to make a key", c.in, msg)
		}
	}
}
