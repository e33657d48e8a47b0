package vault

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
)

// Config configures a vault. The zero Config is ready to use.
type Config struct {
	// Rand is the source of key material. Nil means crypto/rand.Reader; tests inject a
	// deterministic reader.
	Rand io.Reader
}

// Vault is a directory of private keys. Its methods are safe for concurrent use.
type Vault struct {
	dir    string
	root   *os.Root
	rand   io.Reader
	closed atomic.Bool
}

// tmpPrefix starts the names of files being written. Key names cannot start with a dot, so
// a temporary file is never taken for a key.
const tmpPrefix = ".tmp-"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidName reports whether name can name a key: 1 to 64 characters of lowercase letters,
// digits, '.', '_' and '-', starting with a letter or digit, and no "..".
func ValidName(name string) bool {
	return nameRE.MatchString(name) && !strings.Contains(name, "..")
}

func checkName(op, name string) error {
	if !ValidName(name) {
		return fmt.Errorf("vault: %s %q: want 1-64 of a-z 0-9 . _ - starting with a letter or digit, without \"..\": %w", op, name, ErrBadName)
	}
	return nil
}

// Open opens the vault in dir with the zero Config. See Config.Open.
func Open(dir string) (*Vault, error) { return Config{}.Open(dir) }

// Open opens the vault in dir, creating the directory (mode 0700, parent must exist) if it
// does not exist. It refuses a dir that is a symbolic link, and a dir or any entry in it
// that is open to group or others, with an error that says how to fix it. Temporary files
// left by an interrupted write are removed.
func (cfg Config) Open(dir string) (*Vault, error) {
	if dir == "" {
		return nil, errors.New("vault: open: empty directory name")
	}
	dir = filepath.Clean(dir)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("vault: create %s: %w", dir, err)
	}
	fi, err := checkPrivate(dir, true)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("vault: open %s: %w", dir, err)
	}
	// The directory opened must be the one checked, not something swapped in since.
	if rfi, err := root.Stat("."); err != nil || !os.SameFile(fi, rfi) {
		root.Close()
		return nil, fmt.Errorf("vault: %s changed while it was being opened; try again", dir)
	}
	v := &Vault{dir: dir, root: root, rand: cfg.Rand}
	if v.rand == nil {
		v.rand = rand.Reader
	}
	if err := v.checkEntries(); err != nil {
		root.Close()
		return nil, err
	}
	return v, nil
}

// checkEntries refuses symbolic links and anything open to group or others in the vault,
// and removes leftover temporary files.
func (v *Vault) checkEntries() error {
	names, err := v.readDir()
	if err != nil {
		return err
	}
	for _, name := range names {
		fi, err := v.root.Lstat(name)
		if err != nil {
			return fmt.Errorf("vault: %w", err)
		}
		if strings.HasPrefix(name, tmpPrefix) && fi.Mode().IsRegular() {
			if err := v.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("vault: remove leftover %s: %w", v.path(name), err)
			}
			continue
		}
		if err := checkMode(v.path(name), fi, fi.IsDir()); err != nil {
			return fmt.Errorf("vault: %w", err)
		}
	}
	return nil
}

func (v *Vault) readDir() ([]string, error) {
	d, err := v.root.Open(".")
	if err != nil {
		return nil, fmt.Errorf("vault: list %s: %w", v.dir, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("vault: list %s: %w", v.dir, err)
	}
	slices.Sort(names)
	return names, nil
}

// CheckPrivate checks that path is a directory (wantDir) or a regular file that only its
// owner can access, and is not a symbolic link. The node checks its home with it the way
// Open checks the vault. An insecure mode is reported as a *PermissionError.
func CheckPrivate(path string, wantDir bool) error {
	_, err := checkPrivate(path, wantDir)
	return err
}

func checkPrivate(path string, wantDir bool) (fs.FileInfo, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if err := checkMode(path, fi, wantDir); err != nil {
		return nil, err
	}
	return fi, nil
}

func checkMode(path string, fi fs.FileInfo, wantDir bool) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s %w; the vault never follows links: replace it with what it points to", path, ErrSymlink)
	case wantDir && !fi.IsDir():
		return fmt.Errorf("%s is not a directory: %w", path, ErrFileType)
	case !wantDir && !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%v): %w", path, fi.Mode().Type(), ErrFileType)
	case fi.Mode().Perm()&0o077 != 0:
		return &PermissionError{Path: path, Mode: fi.Mode(), Dir: wantDir}
	}
	return nil
}

// Dir returns the vault's directory.
func (v *Vault) Dir() string { return v.dir }

func (v *Vault) path(name string) string { return filepath.Join(v.dir, name) }

// Close releases the vault's directory handle. It is idempotent; other methods return
// ErrClosed afterwards.
func (v *Vault) Close() error {
	if v.closed.Swap(true) {
		return nil
	}
	return v.root.Close()
}

func (v *Vault) check(op, name string) error {
	if v.closed.Load() {
		return fmt.Errorf("vault: %s %q: %w", op, name, ErrClosed)
	}
	return checkName(op, name)
}

// List returns the names of the keys in the vault, sorted.
func (v *Vault) List() ([]string, error) {
	if v.closed.Load() {
		return nil, fmt.Errorf("vault: list: %w", ErrClosed)
	}
	names, err := v.readDir()
	if err != nil {
		return nil, err
	}
	keys := names[:0]
	for _, name := range names {
		if !ValidName(name) {
			continue
		}
		if fi, err := v.root.Lstat(name); err == nil && fi.Mode().IsRegular() {
			keys = append(keys, name)
		}
	}
	return keys, nil
}

// Delete removes the key name. It removes the file; it does not try to scrub the bytes from
// the disk, which modern file systems and SSDs do not allow reliably.
func (v *Vault) Delete(name string) error {
	if err := v.check("delete", name); err != nil {
		return err
	}
	fi, err := v.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: delete %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("vault: delete %q: %w", name, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("vault: delete %q: %s is a directory: %w", name, v.path(name), ErrFileType)
	}
	if err := v.root.Remove(name); err != nil {
		return fmt.Errorf("vault: delete %q: %w", name, err)
	}
	if err := v.syncDir(); err != nil {
		return fmt.Errorf("vault: delete %q: %w", name, err)
	}
	return nil
}

// create writes data as the new file name atomically: data goes to a temporary file in the
// vault, which is synced and then hard-linked to name. Unlike a rename, the link fails if
// name exists (even as a dangling symbolic link), so a key is never overwritten and nothing
// is written through a link. create clears data.
func (v *Vault) create(name string, data []byte) error {
	defer clear(data)
	tmp := tmpPrefix + rand.Text()
	if err := v.writeTemp(tmp, data); err != nil {
		return err
	}
	err := v.root.Link(tmp, name)
	if errors.Is(err, fs.ErrExist) {
		err = ErrExists
	}
	// After a successful link this removes only the temporary name.
	if rerr := v.root.Remove(tmp); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	return v.syncDir()
}

// writeTemp writes data to the new file tmp, mode 0600, and syncs it. On failure it removes
// what it created.
func (v *Vault) writeTemp(tmp string, data []byte) error {
	f, err := v.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if err != nil {
		return err
	}
	// The umask may have cleared bits; set the mode exactly.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		v.root.Remove(tmp)
	}
	return err
}

// syncDir makes the directory entries durable.
func (v *Vault) syncDir() error {
	d, err := v.root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// maxFileSize bounds what is read from a key file.
const maxFileSize = 256

// read returns the contents of the key file name, refusing symbolic links, anything but a
// regular file, and files open to group or others.
func (v *Vault) read(name string) ([]byte, error) {
	fi, err := v.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := checkMode(v.path(name), fi, false); err != nil {
		return nil, err
	}
	f, err := v.root.OpenFile(name, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ffi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !os.SameFile(fi, ffi) {
		return nil, fmt.Errorf("%s changed while it was being opened; try again", v.path(name))
	}
	if err := checkMode(v.path(name), ffi, false); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		clear(data)
		return nil, fmt.Errorf("%s is over %d bytes: %w", v.path(name), maxFileSize, ErrCorrupt)
	}
	return data, nil
}
