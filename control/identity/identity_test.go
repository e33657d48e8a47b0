package identity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// testSigner is an in-memory Signer with a key derived from a fixed seed.
type testSigner struct{ priv ed25519.PrivateKey }

func (s testSigner) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }
func (s testSigner) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, msg), nil
}

// key returns the test signer number n; the same n always gives the same key.
func key(n int) testSigner {
	seed := sha256.Sum256(fmt.Appendf(nil, "adjacent identity test key %d", n))
	return testSigner{ed25519.NewKeyFromSeed(seed[:])}
}

// badSigner returns signatures that do not verify.
type badSigner struct{ testSigner }

func (s badSigner) Sign(msg []byte) ([]byte, error) {
	sig := ed25519.Sign(s.priv, msg)
	sig[0] ^= 1
	return sig, nil
}

// failSigner cannot sign.
type failSigner struct{ testSigner }

func (failSigner) Sign([]byte) ([]byte, error) { return nil, errors.New("vault locked") }

var t0 = time.Unix(1_700_000_000, 0)

func newHistory(t testing.TB, keys ...int) *History {
	t.Helper()
	h, err := New(key(keys[0]), t0)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for i := 1; i < len(keys); i++ {
		if err := h.Rotate(key(keys[i-1]), key(keys[i]), t0.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatalf("Rotate %d: %v", i, err)
		}
	}
	return h
}

// TestGolden pins the identifier and encoding of a fixed first change, so that a change
// to the encoding or the hash is noticed: every existing identifier would change with it.
func TestGolden(t *testing.T) {
	h := newHistory(t, 1)
	got := fmt.Sprintf("identifier %s\nhistory %x\n", h.Identifier(), h.Encode())
	path := filepath.Join("testdata", "first_change.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("first change:\n%s\nwant (testdata):\n%s", got, want)
	}
	// The identifier is the hash of the first change's data, independently computed here.
	pub := key(1).Public()
	data := append([]byte{Version}, pub...)
	data = append(data, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00) // 1_700_000_000
	sum := sha256.Sum256(data)
	if want := Identifier("I" + hex.EncodeToString(sum[:])); h.Identifier() != want {
		t.Errorf("Identifier() = %s, want %s", h.Identifier(), want)
	}
}

func TestParseIdentifier(t *testing.T) {
	valid := string(newHistory(t, 1).Identifier())
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"valid", valid, true},
		{"all zero", "I" + strings.Repeat("0", 64), true},
		{"empty", "", false},
		{"no prefix", valid[1:], false},
		{"lowercase prefix", "i" + valid[1:], false},
		{"uppercase hex", "I" + strings.ToUpper(valid[1:]), false},
		{"short", valid[:64], false},
		{"long", valid + "0", false},
		{"not hex", "I" + strings.Repeat("g", 64), false},
		{"very long", strings.Repeat("I", 1000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIdentifier(tt.in)
			if tt.ok {
				if err != nil || string(got) != tt.in {
					t.Errorf("ParseIdentifier(%q) = %q, %v, want %q, nil", tt.in, got, err, tt.in)
				}
				return
			}
			if !errors.Is(err, ErrBadIdentifier) {
				t.Errorf("ParseIdentifier(%q) = %q, %v, want %v", tt.in, got, err, ErrBadIdentifier)
			}
		})
	}
}
