package hosts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// lockWait bounds how long Update waits for another process's lock on the file.
const lockWait = 10 * time.Second

// lock opens the file at path and takes an exclusive advisory lock on it; f is nil when there
// is no file. The file is opened for writing where the node may write it; where it may not,
// it is opened for reading and werr says why it is not writable. A file replaced while we
// waited for its lock is opened again, so the lock held is the current file's.
func lock(path string) (f *os.File, werr error, err error) {
	for range 10 {
		werr = nil
		// Never through a symbolic link: one planted where others may write would turn the
		// node's rewrite onto a file the node owns.
		f, err = os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
		if denied(err) {
			werr = err
			f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		}
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("hosts file %s is a symbolic link; the node writes no file through a link: give --hosts-file the file it points to", path)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if err := flock(f); err != nil {
			f.Close()
			return nil, nil, err
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, werr, nil
		}
		f.Close()
	}
	return nil, nil, errors.New("replaced again and again while waiting for its lock")
}

// flock takes f's exclusive lock, waiting at most lockWait for another holder.
func flock(f *os.File) error {
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("another process has held its lock (flock) for %v; is another adjacent node stuck?", lockWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// denied reports whether err says the node may not write there: permissions, a read-only
// file system, or a system call filter.
func denied(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EROFS)
}

// errInPlace says the file cannot be replaced and is to be rewritten in place.
var errInPlace = errors.New("rewrite in place")

// write writes data, the new content of the file at path, whose locked file is f (nil when
// there is none yet) holding old. It replaces the file atomically where it can: a temporary
// file beside it, with the old one's mode, owner and group, renamed over it. It rewrites the
// file in place where it cannot: a directory the node may not write (the system service in
// /etc), a file that is a mount point (as /etc/hosts in a container, or under the unit's
// ReadWritePaths=), an owner or group the node may not give. In place, only the bytes from
// the first that differs are written, then the file is cut to length: what comes before the
// managed block is never missing for a reader.
func write(path string, f *os.File, werr error, old, data []byte) error {
	err := replace(path, f, data)
	if err == nil {
		return nil
	}
	if !errors.Is(err, errInPlace) {
		return fmt.Errorf("hosts: write %s: %w", path, err)
	}
	if f == nil {
		return cannotCreate(path, err)
	}
	if werr != nil {
		return notWritable(path, werr)
	}
	i := 0
	for i < len(old) && i < len(data) && old[i] == data[i] {
		i++
	}
	if _, err := f.WriteAt(data[i:], int64(i)); err != nil {
		return fmt.Errorf("hosts: write %s in place: %w", path, err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		return fmt.Errorf("hosts: write %s in place: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("hosts: write %s in place: %w", path, err)
	}
	return nil
}

// replace writes data to a temporary file beside path and renames it over path, keeping the
// mode, owner and group of f. It returns an error wrapping errInPlace where the file is to be
// rewritten in place instead.
func replace(path string, f *os.File, data []byte) error {
	mode, uid, gid := os.FileMode(0o644), -1, -1
	if f != nil {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		mode = fi.Mode().Perm()
		st := fi.Sys().(*syscall.Stat_t)
		uid, gid = int(st.Uid), int(st.Gid)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".adjacent-*")
	if denied(err) {
		return fmt.Errorf("%w: %w", errInPlace, err)
	}
	if err != nil {
		return err
	}
	name := tmp.Name()
	err = func() error {
		defer tmp.Close()
		if _, err := tmp.Write(data); err != nil {
			return err
		}
		if err := tmp.Chmod(mode); err != nil {
			return err
		}
		if uid >= 0 {
			fi, err := tmp.Stat()
			if err != nil {
				return err
			}
			// A grant by group (as `adjacent service install` gives the service's group) must
			// survive a node of another user rewriting the file.
			if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || int(st.Gid) != gid {
				if err := tmp.Chown(uid, gid); err != nil {
					if denied(err) {
						return fmt.Errorf("%w: %w", errInPlace, err)
					}
					return err
				}
			}
		}
		if err := tmp.Sync(); err != nil {
			return err
		}
		return tmp.Close()
	}()
	if err == nil {
		err = os.Rename(name, path)
		if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV) || denied(err) {
			err = fmt.Errorf("%w: %w", errInPlace, err)
		}
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

// cannotCreate is the error for a hosts file that does not exist in a directory the node
// may not write.
func cannotCreate(path string, err error) error {
	g := group()
	return fmt.Errorf("hosts: cannot create %s: %w; the node runs as uid %d, group %s; create it and let the group write it: sudo touch %s && sudo chgrp %s %s && sudo chmod g+w %s",
		path, cause(err), os.Geteuid(), g, path, g, path, path)
}

// notWritable is the error for a hosts file the node may neither replace nor write in place;
// werr is why it could not open it for writing. The usual cause under the system service is
// that the file was replaced since `adjacent service install` gave the service's group write
// access (editors, sed -i and cloud-init write a new file and rename it over the old one),
// taking the grant with the old file, and, under the unit's ReadWritePaths=, the bind mount
// that made it writable in a read-only /etc.
func notWritable(path string, werr error) error {
	g := group()
	if errors.Is(werr, syscall.EROFS) {
		return fmt.Errorf("hosts: cannot write %s: it is on a file system that is read-only for the node (%w); if the node runs as the system service, the file was replaced since the service started: run `sudo adjacent service install` again, then `sudo systemctl restart adjacent`",
			path, cause(werr))
	}
	return fmt.Errorf("hosts: cannot write %s: %w; the node runs as uid %d, group %s, and may write neither the file nor its directory; if the file was replaced (editors, sed -i and cloud-init write a new one), its grant went with the old one: run `sudo adjacent service install` again, or `sudo chgrp %s %s && sudo chmod g+w %s`",
		path, cause(werr), os.Geteuid(), g, g, path, path)
}

// cause is the system's error number inside err, or err.
func cause(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// group is the name of the node's effective group, or its number where it has none.
func group() string {
	id := strconv.Itoa(os.Getegid())
	if g, err := user.LookupGroupId(id); err == nil {
		return g.Name
	}
	return id
}
