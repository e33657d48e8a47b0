package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrInsecure: a vault path is open to group or others. The error is a
	// *PermissionError naming the path, its mode and the fix.
	ErrInsecure = errors.New("open to group or others")
	// ErrSymlink: a vault path is a symbolic link; the vault never follows one.
	ErrSymlink = errors.New("is a symbolic link")
	// ErrFileType: a vault path is not a regular file or directory as expected.
	ErrFileType = errors.New("wrong file type")
	// ErrBadName: a key name is not valid.
	ErrBadName = errors.New("invalid key name")
	// ErrNotFound: no key has that name.
	ErrNotFound = errors.New("key not found")
	// ErrExists: a key with that name already exists; keys are never overwritten.
	ErrExists = errors.New("key already exists")
	// ErrWrongKind: the key with that name is of another kind.
	ErrWrongKind = errors.New("wrong key kind")
	// ErrCorrupt: a key file cannot be decoded.
	ErrCorrupt = errors.New("corrupt key file")
	// ErrClosed: the vault is closed.
	ErrClosed = errors.New("vault closed")
)

// PermissionError says that a path that must be private is open to group or others.
// It unwraps to ErrInsecure.
type PermissionError struct {
	Path string
	Mode fs.FileMode
	Dir  bool
}

func (e *PermissionError) Error() string {
	fix := "chmod 600"
	if e.Dir {
		fix = "chmod 700"
	}
	return fmt.Sprintf("%s has mode %04o, open to group or others; fix with: %s %s",
		e.Path, e.Mode.Perm(), fix, shellQuote(e.Path))
}

func (e *PermissionError) Unwrap() error { return ErrInsecure }

// shellQuote quotes p for a shell when it needs quoting, so the suggested fix can be pasted.
func shellQuote(p string) string {
	if p != "" && strings.Trim(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+~=,:@") == "" {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
