package hosts

import (
	"bytes"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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

// testUID is the user the permission tests run as when the tests run as root, who may write
// anything.
const testUID = 61235

// unprivileged runs the calling test as testUID when the tests run as root (permissions do
// not hold for root): it runs this test binary again under setpriv with only that test, and
// reports false, for the caller to return. As any other user, or in that child, it reports
// true: go on here.
func unprivileged(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return true
	}
	if os.Getenv("ADJACENT_HOSTS_TEST_CHILD") != "" {
		t.Fatal("setpriv left the test root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("root, and no setpriv (Debian package util-linux) to run the test as another user")
	}
	// The binary and a temporary directory the user may use (t.TempDir's parent is root's, 0700).
	base, err := os.MkdirTemp("", "adjacent-hosts-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(base, "tmp")
	for _, err := range []error{os.Chmod(base, 0o755), os.WriteFile(filepath.Join(base, "hosts.test"), exe, 0o755),
		os.Mkdir(tmp, 0o700), os.Chown(tmp, testUID, testUID)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	uid := strconv.Itoa(testUID)
	cmd := exec.Command(setpriv, "--reuid", uid, "--regid", uid, "--clear-groups", "--inh-caps", "-all", "--bounding-set", "-all",
		filepath.Join(base, "hosts.test"), "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "ADJACENT_HOSTS_TEST_CHILD=1", "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as uid %d: %v\n%s", testUID, err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("as uid %d the test did not pass:\n%s", testUID, out)
	}
	t.Logf("ran as uid %d:\n%s", testUID, out)
	return false
}

// readOnlyDir makes a directory holding a hosts file with content and mode, then takes the
// write permission of the directory away, as /etc is for the system service.
func readOnlyDir(t *testing.T, content string, mode os.FileMode) (path string, ino uint64) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "hosts")
	if content != "" {
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		ino = inode(t, path)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if f, err := os.CreateTemp(dir, "probe"); err == nil {
		f.Close()
		t.Fatalf("created %s in a directory of mode 0555: permissions do not hold here", f.Name())
	}
	return path, ino
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestInPlace: in a directory the node may not write, a hosts file it may write is rewritten
// in place (the same file, its mode kept): the managed block is written and removed, the text
// before and after it kept byte for byte.
func TestInPlace(t *testing.T) {
	if !unprivileged(t) {
		return
	}
	orig := "127.0.0.1\tlocalhost\n" + Begin + "\n100.127.0.9\told.name\n" + End + "\n# after the block\n10.0.0.1\trouter\n"
	path, ino := readOnlyDir(t, orig, 0o664)
	a := netip.MustParseAddr("100.127.0.1")
	if err := Set(path, "db.bank.internal", a); err != nil {
		t.Fatalf("Set in a read-only directory: %v", err)
	}
	if err := Remove(path, "old.name"); err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1\tlocalhost\n" + Begin + "\n100.127.0.1\tdb.bank.internal\n" + End + "\n# after the block\n10.0.0.1\trouter\n"
	if got := readFile(t, path); got != want {
		t.Fatalf("after Set and Remove:\n%s\nwant:\n%s", got, want)
	}
	if got := inode(t, path); got != ino {
		t.Errorf("the file was replaced (inode %d, was %d), want it rewritten in place", got, ino)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o664 {
		t.Errorf("mode %v, want 0664 kept", fi.Mode().Perm())
	}
	if err := Remove(path, "db.bank.internal"); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, path), "127.0.0.1\tlocalhost\n# after the block\n10.0.0.1\trouter\n"; got != want {
		t.Fatalf("after the last Remove = %q, want %q", got, want)
	}
}

// TestNotWritable: a hosts file the node may write neither in place nor by replacing it is
// left as it was, and the error names the file and the fix.
func TestNotWritable(t *testing.T) {
	if !unprivileged(t) {
		return
	}
	orig := "127.0.0.1\tlocalhost\n"
	path, _ := readOnlyDir(t, orig, 0o444)
	err := Set(path, "db.bank.internal", netip.MustParseAddr("100.127.0.1"))
	if err == nil {
		t.Fatal("Set on a file and directory the node may not write succeeded")
	}
	for _, want := range []string{"cannot write " + path + ": permission denied", "sudo adjacent service install", "chmod g+w " + path, "chgrp "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Set error %q does not say %q", err, want)
		}
	}
	if got := readFile(t, path); got != orig {
		t.Errorf("the file became %q", got)
	}
	t.Log(err)

	missing, _ := readOnlyDir(t, "", 0)
	err = Set(missing, "db.bank.internal", netip.MustParseAddr("100.127.0.1"))
	if err == nil || !strings.Contains(err.Error(), "cannot create "+missing+": permission denied") || !strings.Contains(err.Error(), "sudo touch "+missing) {
		t.Errorf("Set on a missing file in a read-only directory = %v, want a refusal naming the fix", err)
	}
	t.Log(err)
}

// TestNotWritableReadOnlyFS: the refusal for a read-only file system (the unit's bind mount
// of /etc/hosts gone with a replaced file) says to install and restart the service.
func TestNotWritableReadOnlyFS(t *testing.T) {
	err := notWritable("/etc/hosts", &fs.PathError{Op: "open", Path: "/etc/hosts", Err: syscall.EROFS})
	for _, want := range []string{"cannot write /etc/hosts: ", "(read-only file system)", "adjacent service install", "systemctl restart adjacent"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("notWritable(EROFS) = %q, want it to say %q", err, want)
		}
	}
}

// TestReplaceKeepsOwner: a node that may replace the file (root) keeps its owner and group,
// so the grant `adjacent service install` gives the service's group survives.
func TestReplaceKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file to another group")
	}
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte("127.0.0.1\tlocalhost\n"), 0o664); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 0, testUID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o664); err != nil {
		t.Fatal(err)
	}
	if err := Set(path, "db.bank.internal", netip.MustParseAddr("100.127.0.1")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != testUID || fi.Mode().Perm() != 0o664 {
		t.Errorf("after Set: owner %d:%d, mode %v; want 0:%d, 0664 kept", st.Uid, st.Gid, fi.Mode().Perm(), testUID)
	}
}

// TestLocked: an update waits for the lock another process (here another open file) holds
// on the file, and then applies to what that holder wrote.
func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte("127.0.0.1\tlocalhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	holder, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := syscall.Flock(int(holder.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Set(path, "b.name", netip.MustParseAddr("100.127.0.2")) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Set returned (%v) while another process held the file's lock", err)
	default:
	}
	// The holder adds a line, as another node would, and lets go.
	if _, err := holder.WriteAt([]byte("127.0.0.1\tlocalhost\n10.0.0.1\trouter\n"), 0); err != nil {
		t.Fatal(err)
	}
	syscall.Flock(int(holder.Fd()), syscall.LOCK_UN)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1\tlocalhost\n10.0.0.1\trouter\n" + Begin + "\n100.127.0.2\tb.name\n" + End + "\n"
	if got := readFile(t, path); got != want {
		t.Fatalf("after the holder's write and Set:\n%s\nwant:\n%s", got, want)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRefusesSymlink: a link planted at the hosts file's path is refused, and the file it
// points to is left as it was (a local user must not turn the node's rewrite onto it).
func TestRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	if err := os.WriteFile(target, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "hosts")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	err := Set(link, "db.bank.internal", netip.MustParseAddr("100.127.0.1"))
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Set through a link = %v, want a refusal naming the link", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep\n" {
		t.Fatalf("the link's target became %q", b)
	}
}
