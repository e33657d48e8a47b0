package logfile

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Defaults of Config.
const (
	DefaultMaxBytes = 10 << 20
	DefaultKeep     = 3
)

// Config configures a File. Zero values take the defaults.
type Config struct {
	MaxBytes int64 // the size a file is rotated before exceeding; default DefaultMaxBytes
	Keep     int   // rotated files kept, PATH.1 (newest) to PATH.Keep; default DefaultKeep
	// Stderr makes the process's standard error the current file too, at open and after
	// each rotation, so that what the runtime writes there (a panic, a race report) lands
	// in the current file rather than in a rotated one. Those writes do not count toward
	// MaxBytes.
	Stderr bool
}

// File is a log file rotated by size. It is safe for concurrent use.
type File struct {
	path string
	cfg  Config

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Open opens path for appending, creating it with mode 0600.
func Open(path string, cfg Config) (*File, error) {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	l := &File{path: path, cfg: cfg}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *File) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("logfile: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("logfile: %w", err)
	}
	if l.cfg.Stderr {
		if err := unix.Dup2(int(f.Fd()), 2); err != nil {
			f.Close()
			return fmt.Errorf("logfile: make %s the standard error: %w", l.path, err)
		}
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first if p would take the file over MaxBytes. A write larger
// than MaxBytes goes whole into a fresh file.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	if l.size > 0 && l.size+int64(len(p)) > l.cfg.MaxBytes {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// Name returns the i-th file of a log at path: path itself for 0, else path.i.
func Name(path string, i int) string {
	if i == 0 {
		return path
	}
	return path + "." + strconv.Itoa(i)
}

// rotate shifts the files by one and opens a new one; l.mu is held.
func (l *File) rotate() error {
	l.f.Close()
	l.f = nil
	os.Remove(Name(l.path, l.cfg.Keep))
	for i := l.cfg.Keep - 1; i >= 0; i-- {
		if err := os.Rename(Name(l.path, i), Name(l.path, i+1)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("logfile: rotate: %w", err)
		}
	}
	return l.open()
}

// Close closes the file; later writes fail with os.ErrClosed.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
