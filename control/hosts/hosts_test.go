package hosts

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestSetRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	orig := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("100.127.0.1")
	b := netip.MustParseAddr("fd00::5")
	if err := Set(path, "db.bank.internal", a); err != nil {
		t.Fatal(err)
	}
	if err := Set(path, "web.bank.internal", b); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	want := orig + Begin + "\n100.127.0.1\tdb.bank.internal\nfd00::5\tweb.bank.internal\n" + End + "\n"
	if string(data) != want {
		t.Fatalf("after Set:\n%s\nwant:\n%s", data, want)
	}
	if err := Remove(path, "db.bank.internal"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(path, "web.bank.internal"); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	if string(data) != orig {
		t.Fatalf("after Remove = %q, want %q", data, orig)
	}
}

func TestParseKeepsOutside(t *testing.T) {
	in := "a\n" + Begin + "\n10.0.0.1 x\nbad line\n" + End + "\nb\n"
	before, es, after, err := Parse([]byte(in))
	if err != nil || string(before) != "a\n" || string(after) != "b\n" || len(es) != 1 || es[0].Name != "x" {
		t.Fatalf("Parse(%q) = %q, %v, %q, %v", in, before, es, after, err)
	}
}

func TestAllocate(t *testing.T) {
	r := netip.MustParsePrefix("10.9.0.0/30")
	used := map[netip.Addr]bool{netip.MustParseAddr("10.9.0.1"): true}
	a, err := Allocate(r, func(a netip.Addr) bool { return used[a] })
	if err != nil || a != netip.MustParseAddr("10.9.0.2") {
		t.Fatalf("Allocate = %v, %v, want 10.9.0.2", a, err)
	}
	used[a] = true
	if a, err := Allocate(r, func(a netip.Addr) bool { return used[a] }); err == nil {
		t.Fatalf("Allocate of a full range = %v, want an error", a)
	}
	a, err = Allocate(netip.MustParsePrefix("fd61:646a::/64"), func(netip.Addr) bool { return false })
	if err != nil || a != netip.MustParseAddr("fd61:646a::1") {
		t.Fatalf("Allocate v6 = %v, %v", a, err)
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{"db.bank.internal": true, "a": true, "": false, "a..b": false, "-a": false, "a b": false, "1.2.3.4": false, "::1": false} {
		if got := ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzParse: Parse never fails on small input, formatting what it parsed and parsing again
// is a fixpoint, and the text outside the block is kept byte for byte.
func FuzzParse(f *testing.F) {
	f.Add([]byte("127.0.0.1 localhost\n"))
	f.Add([]byte("a\n" + Begin + "\n10.0.0.1 x\n" + End + "\nb\n"))
	f.Add([]byte(Begin + "\nfd00::1 y\n"))
	f.Add([]byte("x" + Begin))
	f.Fuzz(func(t *testing.T, data []byte) {
		before, es, after, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, before) {
			t.Fatalf("before %q is not a prefix of %q", before, data)
		}
		out := Format(before, es, after)
		b2, es2, a2, err := Parse(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) > 0 && (len(es2) != len(es) || !bytes.Equal(a2, after)) {
			t.Fatalf("reparse of %q: %v %q, want %v %q", out, es2, a2, es, after)
		}
		if !bytes.Equal(Format(b2, es2, a2), out) {
			t.Fatalf("Format(Parse(%q)) not a fixpoint", out)
		}
		for i := range len(data) {
			Parse(data[:i])
		}
	})
}
