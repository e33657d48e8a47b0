package vault

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
)

// Ed25519Key is the vault's identity.Signer.
var _ identity.Signer = (*Ed25519Key)(nil)

// detRand returns a deterministic source of key material.
func detRand(seed byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{seed}) }

func openVault(t *testing.T) (*Vault, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vault")
	v, err := Config{Rand: detRand(1)}.Open(dir)
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() { v.Close() })
	return v, dir
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

// entries lists dir, for checking that nothing was written.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestOpenCreates(t *testing.T) {
	v, dir := openVault(t)
	if got := mode(t, dir); got != fs.ModeDir|0o700 {
		t.Errorf("mode of new vault = %v, want %v", got, fs.ModeDir|0o700)
	}
	if v.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", v.Dir(), dir)
	}
	if _, err := v.GenerateEd25519("id"); err != nil {
		t.Fatal(err)
	}
	again, err := Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer again.Close()
	if names, err := again.List(); err != nil || !slices.Equal(names, []string{"id"}) {
		t.Errorf("List() after reopen = %q, %v, want [id]", names, err)
	}
	if _, err := Open(filepath.Join(dir, "missing", "vault")); err == nil {
		t.Errorf("Open under a missing parent succeeded")
	}
}

func TestOpenRefusesPermissions(t *testing.T) {
	tests := []struct {
		name    string
		dirMode fs.FileMode
		file    string
		mode    fs.FileMode
		fix     string
	}{
		{name: "group-readable dir", dirMode: 0o750, fix: "chmod 700"},
		{name: "world-writable dir", dirMode: 0o707, fix: "chmod 700"},
		{name: "group-traversable dir", dirMode: 0o710, fix: "chmod 700"},
		{name: "world-readable key", dirMode: 0o700, file: "id", mode: 0o604, fix: "chmod 600"},
		{name: "group-writable key", dirMode: 0o700, file: "id", mode: 0o620, fix: "chmod 600"},
		{name: "group-readable stray file", dirMode: 0o700, file: "NOTES", mode: 0o640, fix: "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, dir := openVault(t)
			if _, err := v.GenerateEd25519("id"); err != nil {
				t.Fatal(err)
			}
			v.Close()
			path := dir
			if tt.file != "" {
				path = filepath.Join(dir, tt.file)
				if err := os.WriteFile(path, nil, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, tt.dirMode); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir)
			var perr *PermissionError
			if !errors.Is(err, ErrInsecure) || !errors.As(err, &perr) {
				t.Fatalf("Open() = %v, want a *PermissionError", err)
			}
			msg := err.Error()
			want := tt.fix + " " + path
			if perr.Path != path || !strings.Contains(msg, want) || !strings.Contains(msg, path+" has mode 0") ||
				strings.Contains(msg, "\n") {
				t.Errorf("Open() = %q, want one line naming %s, its mode and %q", msg, path, want)
			}
		})
	}
}

func TestLoadRefusesPermissions(t *testing.T) {
	v, dir := openVault(t)
	if _, err := v.GenerateEd25519("id"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "id")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := v.Ed25519("id")
	if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Errorf("Ed25519() of a 0644 key = %v, %v, want %v with the fix", k, err, ErrInsecure)
	}
}

func TestCheckPrivate(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, dir bool, m fs.FileMode) string {
		p := filepath.Join(base, name)
		var err error
		if dir {
			err = os.Mkdir(p, m)
		} else {
			err = os.WriteFile(p, nil, m)
		}
		if err == nil {
			err = os.Chmod(p, m)
		}
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	privDir, openDir := mk("priv", true, 0o700), mk("open", true, 0o755)
	privFile, openFile := mk("priv.key", false, 0o600), mk("open.key", false, 0o644)
	link := filepath.Join(base, "link")
	if err := os.Symlink(privDir, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		wantDir bool
		want    error
	}{
		{privDir, true, nil},
		{privFile, false, nil},
		{openDir, true, ErrInsecure},
		{openFile, false, ErrInsecure},
		{privFile, true, ErrFileType},
		{privDir, false, ErrFileType},
		{link, true, ErrSymlink},
		{filepath.Join(base, "missing"), true, fs.ErrNotExist},
	}
	for _, tt := range tests {
		err := CheckPrivate(tt.path, tt.wantDir)
		if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
			t.Errorf("CheckPrivate(%s, %v) = %v, want %v", tt.path, tt.wantDir, err, tt.want)
		}
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"identity", true},
		{"noise.static-2_b", true},
		{"0", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"Identity", false},
		{".hidden", false},
		{"-flag", false},
		{"_x", false},
		{"a..b", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{"/etc/passwd", false},
		{"a b", false},
		{"a\x00", false},
		{"a\n", false},
		{"é", false},
		{".tmp-X", false},
	}
	for _, tt := range tests {
		if got := ValidName(tt.name); got != tt.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
	v, dir := openVault(t)
	parent := filepath.Dir(dir)
	before := entries(t, parent)
	for _, tt := range tests {
		if tt.ok {
			continue
		}
		if _, err := v.GenerateEd25519(tt.name); !errors.Is(err, ErrBadName) {
			t.Errorf("GenerateEd25519(%q) = %v, want %v", tt.name, err, ErrBadName)
		}
		if _, err := v.GenerateX25519(tt.name); !errors.Is(err, ErrBadName) {
			t.Errorf("GenerateX25519(%q) = %v, want %v", tt.name, err, ErrBadName)
		}
		if _, err := v.Ed25519(tt.name); !errors.Is(err, ErrBadName) {
			t.Errorf("Ed25519(%q) = %v, want %v", tt.name, err, ErrBadName)
		}
		if err := v.Delete(tt.name); !errors.Is(err, ErrBadName) {
			t.Errorf("Delete(%q) = %v, want %v", tt.name, err, ErrBadName)
		}
	}
	if got := entries(t, parent); !slices.Equal(got, before) {
		t.Errorf("vault parent after invalid names = %q, want %q", got, before)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("vault after invalid names = %q, want empty", got)
	}
}

// TestNothingEscapes checks that names and symbolic links never make the vault write or read
// outside its directory.
func TestNothingEscapes(t *testing.T) {
	v, dir := openVault(t)
	outside := t.TempDir()
	target := filepath.Join(outside, "target")
	if err := os.WriteFile(target, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../x", "../../x", filepath.Join(outside, "abs"), "x/../../y"} {
		if _, err := v.GenerateEd25519(name); !errors.Is(err, ErrBadName) {
			t.Errorf("GenerateEd25519(%q) = %v, want %v", name, err, ErrBadName)
		}
	}
	// Links planted in the vault after it was opened: to a file outside, to a missing file
	// outside, and to a key inside.
	if _, err := v.GenerateEd25519("real"); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"evil":     target,
		"dangling": filepath.Join(outside, "created"),
		"relative": "../" + filepath.Base(outside) + "/target",
		"inside":   "real",
	}
	for name, to := range links {
		if err := os.Symlink(to, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name := range links {
		if _, err := v.GenerateEd25519(name); !errors.Is(err, ErrExists) {
			t.Errorf("GenerateEd25519(%q) over a link = %v, want %v", name, err, ErrExists)
		}
		if _, err := v.GenerateX25519(name); !errors.Is(err, ErrExists) {
			t.Errorf("GenerateX25519(%q) over a link = %v, want %v", name, err, ErrExists)
		}
		if _, err := v.Ed25519(name); !errors.Is(err, ErrSymlink) {
			t.Errorf("Ed25519(%q) through a link = %v, want %v", name, err, ErrSymlink)
		}
		if _, err := v.X25519(name); !errors.Is(err, ErrSymlink) {
			t.Errorf("X25519(%q) through a link = %v, want %v", name, err, ErrSymlink)
		}
	}
	if names, err := v.List(); err != nil || !slices.Equal(names, []string{"real"}) {
		t.Errorf("List() = %q, %v, want [real]", names, err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrSymlink) {
		t.Errorf("Open of a vault holding links = %v, want %v", err, ErrSymlink)
	}
	if err := v.Delete("evil"); err != nil {
		t.Errorf("Delete(evil) = %v", err)
	}
	if got, err := os.ReadFile(target); err != nil || string(got) != "precious" {
		t.Errorf("link target = %q, %v, want it untouched", got, err)
	}
	if got := entries(t, outside); !slices.Equal(got, []string{"target"}) {
		t.Errorf("outside dir = %q, want [target]", got)
	}

	// A vault directory that is itself a link is refused.
	real := filepath.Join(t.TempDir(), "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "vault")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if v, err := Open(link); !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), link) {
		t.Errorf("Open(%s) of a link = %v, %v, want %v naming the path", link, v, err, ErrSymlink)
	}
	if got := entries(t, real); len(got) != 0 {
		t.Errorf("linked-to dir = %q, want empty", got)
	}
}

func TestRoundTrip(t *testing.T) {
	v, dir := openVault(t)
	ek, err := v.GenerateEd25519("identity")
	if err != nil {
		t.Fatal(err)
	}
	xk, err := v.GenerateX25519("noise")
	if err != nil {
		t.Fatal(err)
	}
	// Key material comes from Config.Rand: the Ed25519 seed first, then the X25519 scalar.
	var seed, scalar [32]byte
	r := detRand(1)
	r.Read(seed[:])
	r.Read(scalar[:])
	if got, want := ek.Public(), ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey); !got.Equal(want) {
		t.Errorf("Ed25519 public = %x, want %x from the injected randomness", got, want)
	}
	xpriv, err := ecdh.X25519().NewPrivateKey(scalar[:])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := xk.Public(), xpriv.PublicKey().Bytes(); !bytes.Equal(got[:], want) {
		t.Errorf("X25519 public = %x, want %x from the injected randomness", got, want)
	}
	if dh := xk.DH(); !bytes.Equal(dh.Private, scalar[:]) || !bytes.Equal(dh.Public, xpriv.PublicKey().Bytes()) {
		t.Errorf("DH() does not hold the generated key pair")
	}

	for _, name := range []string{"identity", "noise"} {
		if got := mode(t, filepath.Join(dir, name)); got != 0o600 {
			t.Errorf("mode of %s = %v, want %v", name, got, fs.FileMode(0o600))
		}
	}
	v.Close()
	v2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	ek2, err := v2.Ed25519("identity")
	if err != nil {
		t.Fatalf("Ed25519(identity) = %v", err)
	}
	if !ek2.Equal(ek) || !ek2.Public().Equal(ek.Public()) || ek2.Name() != "identity" {
		t.Errorf("loaded %v, want %v", ek2, ek)
	}
	msg := []byte("hello")
	sig, err := ek2.Sign(msg)
	if err != nil || !ed25519.Verify(ek.Public(), msg, sig) {
		t.Errorf("Sign() = %x, %v, does not verify", sig, err)
	}
	xk2, err := v2.X25519("noise")
	if err != nil {
		t.Fatalf("X25519(noise) = %v", err)
	}
	if !xk2.Equal(xk) || xk2.Public() != xk.Public() || xk2.Name() != "noise" {
		t.Errorf("loaded %v, want %v", xk2, xk)
	}
	other, err := v2.GenerateEd25519("other")
	if err != nil {
		t.Fatal(err)
	}
	if other.Equal(ek) {
		t.Errorf("two generated keys are Equal")
	}

	// The vault's key works as an identity's signer.
	h, err := identity.New(ek2, time.Unix(1_700_000_000, 0))
	if err != nil {
		t.Fatalf("identity.New(vault key) = %v", err)
	}
	if err := h.Verify(); err != nil {
		t.Errorf("Verify() = %v", err)
	}
	pub := xk2.Public()
	a, err := identity.Attest(ek2, h.Identifier(), identity.PurposeSecureChannel, pub[:], h.Created(), h.Created().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(h, h.Created()); err != nil {
		t.Errorf("attestation of the vault's Noise key: Verify() = %v", err)
	}
}

func TestWrongKindAndMissing(t *testing.T) {
	v, _ := openVault(t)
	if _, err := v.GenerateEd25519("sign"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.GenerateX25519("dh"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.X25519("sign"); !errors.Is(err, ErrWrongKind) {
		t.Errorf("X25519(sign) = %v, want %v", err, ErrWrongKind)
	}
	if _, err := v.Ed25519("dh"); !errors.Is(err, ErrWrongKind) {
		t.Errorf("Ed25519(dh) = %v, want %v", err, ErrWrongKind)
	}
	if _, err := v.Ed25519("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Ed25519(nope) = %v, want %v", err, ErrNotFound)
	}
	if err := v.Delete("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(nope) = %v, want %v", err, ErrNotFound)
	}
}

func TestCorruptKeyFile(t *testing.T) {
	v, dir := openVault(t)
	if _, err := v.GenerateEd25519("id"); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, "id"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(bytes.Clone(good), 0)},
		{"version", append([]byte{9}, good[1:]...)},
		{"public mismatch", append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1)},
		{"huge", make([]byte, 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "bad"), tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if k, err := v.Ed25519("bad"); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Ed25519 of %s file = %v, %v, want %v", tt.name, k, err, ErrCorrupt)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestAtomicWrite(t *testing.T) {
	v, dir := openVault(t)
	k, err := v.GenerateEd25519("id")
	if err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"id"}) {
		t.Errorf("vault after Generate = %q, want [id] and no temporary file", got)
	}
	before, err := os.ReadFile(filepath.Join(dir, "id"))
	if err != nil {
		t.Fatal(err)
	}
	// A key is never overwritten, by either kind.
	if _, err := v.GenerateEd25519("id"); !errors.Is(err, ErrExists) {
		t.Errorf("second GenerateEd25519(id) = %v, want %v", err, ErrExists)
	}
	if _, err := v.GenerateX25519("id"); !errors.Is(err, ErrExists) {
		t.Errorf("GenerateX25519(id) over an Ed25519 key = %v, want %v", err, ErrExists)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "id")); !bytes.Equal(after, before) {
		t.Errorf("key file changed by a refused Generate")
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"id"}) {
		t.Errorf("vault after refused Generate = %q, want [id]", got)
	}
	// A failed generation leaves nothing behind.
	failing, err := Config{Rand: errReader{}}.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer failing.Close()
	if _, err := failing.GenerateEd25519("new"); err == nil {
		t.Errorf("GenerateEd25519 without randomness succeeded")
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"id"}) {
		t.Errorf("vault after failed Generate = %q, want [id]", got)
	}
	// A temporary file left by a crash is ignored by List and removed by Open.
	tmp := filepath.Join(dir, tmpPrefix+"CRASHED")
	if err := os.WriteFile(tmp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if names, err := v.List(); err != nil || !slices.Equal(names, []string{"id"}) {
		t.Errorf("List() with a leftover temporary file = %q, %v, want [id]", names, err)
	}
	v2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	if got := entries(t, dir); !slices.Equal(got, []string{"id"}) {
		t.Errorf("vault after Open = %q, want the leftover removed", got)
	}
	k2, err := v2.Ed25519("id")
	if err != nil || !k2.Equal(k) {
		t.Errorf("Ed25519(id) = %v, %v, want the original key", k2, err)
	}
}

func TestListDeleteClose(t *testing.T) {
	v, _ := openVault(t)
	for _, n := range []string{"b", "a", "c"} {
		if _, err := v.GenerateX25519(n); err != nil {
			t.Fatal(err)
		}
	}
	if names, err := v.List(); err != nil || !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Errorf("List() = %q, %v, want [a b c]", names, err)
	}
	if err := v.Delete("b"); err != nil {
		t.Fatalf("Delete(b) = %v", err)
	}
	if names, err := v.List(); err != nil || !slices.Equal(names, []string{"a", "c"}) {
		t.Errorf("List() after Delete = %q, %v, want [a c]", names, err)
	}
	if _, err := v.X25519("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("X25519(b) after Delete = %v, want %v", err, ErrNotFound)
	}
	if err := v.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if _, err := v.X25519("a"); !errors.Is(err, ErrClosed) {
		t.Errorf("X25519 after Close = %v, want %v", err, ErrClosed)
	}
	if _, err := v.List(); !errors.Is(err, ErrClosed) {
		t.Errorf("List after Close = %v, want %v", err, ErrClosed)
	}
}
