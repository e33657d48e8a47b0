package hosts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// The lines around the managed block.
const (
	Begin = "# BEGIN adjacent (managed by the adjacent node; do not edit)"
	End   = "# END adjacent"
)

// DefaultRange is where names get their virtual addresses: 100.127.0.0/16, the top of the
// shared address space of RFC 6598 (100.64.0.0/10), which is never routed on the internet
// and whose low part is what carrier NAT and overlay networks usually take.
var DefaultRange = netip.MustParsePrefix("100.127.0.0/16")

// Entry maps a name to an address.
type Entry struct {
	Name string
	Addr netip.Addr
}

// maxFile bounds what Parse reads: a hosts file is small.
const maxFile = 8 << 20

// ErrTooLarge is returned for a hosts file over 8 MiB.
var ErrTooLarge = errors.New("hosts: file larger than 8 MiB")

// Parse splits a hosts file into the text before the managed block, the block's entries
// and the text after it. A file without a block has everything in before. An unterminated
// block runs to the end of the file. Lines in the block that are not "ADDR NAME" are
// dropped.
func Parse(data []byte) (before []byte, entries []Entry, after []byte, err error) {
	if len(data) > maxFile {
		return nil, nil, nil, ErrTooLarge
	}
	start := lineIndex(data, Begin)
	if start < 0 {
		return data, nil, nil, nil
	}
	before = data[:start]
	rest := data[start:]
	_, rest, _ = bytes.Cut(rest, []byte("\n"))
	end := lineIndex(rest, End)
	block := rest
	if end >= 0 {
		block = rest[:end]
		after = rest[end:]
		_, after, _ = bytes.Cut(after, []byte("\n"))
	}
	for _, line := range strings.Split(string(block), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil || !ValidName(f[1]) {
			continue
		}
		entries = append(entries, Entry{Name: f[1], Addr: a})
	}
	return before, entries, after, nil
}

// lineIndex is the offset of the first line of data that is exactly line, or -1.
func lineIndex(data []byte, line string) int {
	off := 0
	for off <= len(data) {
		l, _, found := bytes.Cut(data[off:], []byte("\n"))
		if string(bytes.TrimRight(l, "\r \t")) == line {
			return off
		}
		if !found {
			break
		}
		off += len(l) + 1
	}
	return -1
}

// Format is the file with the block holding entries; with none, the block is removed.
func Format(before []byte, entries []Entry, after []byte) []byte {
	var b bytes.Buffer
	b.Write(before)
	if len(entries) > 0 {
		if len(before) > 0 && before[len(before)-1] != '\n' {
			b.WriteByte('\n')
		}
		b.WriteString(Begin + "\n")
		for _, e := range entries {
			fmt.Fprintf(&b, "%s\t%s\n", e.Addr, e.Name)
		}
		b.WriteString(End + "\n")
	}
	b.Write(after)
	return b.Bytes()
}

// ValidName reports whether s is a host name the block may hold: labels of letters, digits
// and '-', separated by dots, at most 253 bytes.
func ValidName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	// An all-numeric name would read as an address.
	_, err := netip.ParseAddr(s)
	return err != nil
}

var fileMu sync.Mutex // one update at a time in this process

// Update applies fn to the entries of the managed block of the file at path and writes the
// result back, holding an advisory lock (flock) on the file meanwhile, so that the nodes of
// other homes on the machine do not interleave their updates. A missing file is created
// (mode 0644). See write for how the file is written.
func Update(path string, fn func([]Entry) []Entry) error {
	fileMu.Lock()
	defer fileMu.Unlock()
	f, werr, err := lock(path)
	if err != nil {
		return fmt.Errorf("hosts: %s: %w", path, err)
	}
	var data []byte
	if f != nil {
		defer f.Close()
		if data, err = io.ReadAll(io.LimitReader(f, maxFile+1)); err != nil {
			return fmt.Errorf("hosts: read %s: %w", path, err)
		}
	}
	before, entries, after, err := Parse(data)
	if err != nil {
		return fmt.Errorf("hosts: %s: %w", path, err)
	}
	entries = fn(slices.Clone(entries))
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	out := Format(before, entries, after)
	if bytes.Equal(out, data) {
		return nil
	}
	return write(path, f, werr, data, out)
}

// Set maps name to addr in the block of the file at path.
func Set(path, name string, addr netip.Addr) error {
	return Update(path, func(es []Entry) []Entry {
		es = slices.DeleteFunc(es, func(e Entry) bool { return e.Name == name })
		return append(es, Entry{Name: name, Addr: addr})
	})
}

// Remove drops name from the block of the file at path; the block goes with its last name.
func Remove(path, name string) error {
	return Update(path, func(es []Entry) []Entry {
		return slices.DeleteFunc(es, func(e Entry) bool { return e.Name == name })
	})
}

// Allocate returns the first address of r (after the network address) that is not in used.
func Allocate(r netip.Prefix, used func(netip.Addr) bool) (netip.Addr, error) {
	r = r.Masked()
	a := r.Addr().Next()
	for n := 0; a.IsValid() && r.Contains(a) && n < 1<<20; n++ {
		if !used(a) && !(a.Is4() && a == lastOf(r)) {
			return a, nil
		}
		a = a.Next()
	}
	return netip.Addr{}, fmt.Errorf("hosts: no free address left in %s", r)
}

// lastOf is the broadcast address of an IPv4 prefix.
func lastOf(r netip.Prefix) netip.Addr {
	b := r.Addr().As4()
	bits := r.Bits()
	for i := bits; i < 32; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom4(b)
}
