package logfile

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRotatesBySize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.log")
	l, err := Open(path, Config{MaxBytes: 100, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	line := func(i int) []byte { return []byte(strings.Repeat(string(rune('a'+i)), 39) + "\n") } // 40 bytes
	for i := range 10 {
		if n, err := l.Write(line(i)); n != 40 || err != nil {
			t.Fatalf("Write %d = %d, %v", i, n, err)
		}
	}
	// 10 lines of 40 bytes, two to a file: j,i in node.log; h,g in .1; f,e in .2; the rest gone.
	want := map[string]string{path: "ij", Name(path, 1): "gh", Name(path, 2): "ef"}
	for p, letters := range want {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var w []byte
		for _, c := range letters {
			w = append(w, line(int(c-'a'))...)
		}
		if !bytes.Equal(b, w) {
			t.Errorf("%s = %q, want %q", filepath.Base(p), b, w)
		}
		if fi, _ := os.Stat(p); fi.Size() > 100 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: size %d mode %v, want at most 100 bytes, 0600", filepath.Base(p), fi.Size(), fi.Mode())
		}
	}
	if _, err := os.Stat(Name(path, 3)); !os.IsNotExist(err) {
		t.Errorf("%s exists (%v); want only Keep=2 rotated files", Name(path, 3), err)
	}
}

func TestReopenCountsExistingSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.log")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 90), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Config{MaxBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write([]byte("0123456789ab")) // 102 > 100: the old content moves to .1
	if b, _ := os.ReadFile(path); string(b) != "0123456789ab" {
		t.Fatalf("node.log = %q, want the new write alone", b)
	}
	if fi, err := os.Stat(Name(path, 1)); err != nil || fi.Size() != 90 {
		t.Fatalf("node.log.1: %v, %v; want the 90 bytes from before", fi, err)
	}
}

func TestRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.log")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), path); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(path, Config{}); err == nil {
		l.Close()
		t.Fatal("Open followed a symbolic link")
	}
}

func TestClosedWriteFails(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "node.log"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// TestStderrFollows: with Stderr, what the process writes to fd 2 lands in the current
// file, also after a rotation. It runs itself again so as not to take the test's stderr.
func TestStderrFollows(t *testing.T) {
	if path := os.Getenv("LOGFILE_TEST_PATH"); path != "" {
		l, err := Open(path, Config{MaxBytes: 10, Stderr: true})
		if err != nil {
			panic(err)
		}
		l.Write([]byte("01234567"))
		os.Stderr.WriteString("first\n")
		l.Write([]byte("89ab")) // rotates: "first" goes to .1 with the first write
		os.Stderr.WriteString("second\n")
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "node.log")
	cmd := exec.Command(os.Args[0], "-test.run=^TestStderrFollows$")
	cmd.Env = append(os.Environ(), "LOGFILE_TEST_PATH="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if b, _ := os.ReadFile(path); string(b) != "89absecond\n" {
		t.Errorf("node.log = %q, want the write and then stderr's second line", b)
	}
	if b, _ := os.ReadFile(Name(path, 1)); string(b) != "01234567first\n" {
		t.Errorf("node.log.1 = %q, want stderr's first line", b)
	}
}
