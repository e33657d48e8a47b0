package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrNoPolicy is returned by Evaluate on a nil or zero Policy, which denies.
	ErrNoPolicy = errors.New("policy: no policy")
	// ErrMissingAttribute: < or > met an attribute the peer does not carry.
	ErrMissingAttribute = errors.New("attribute missing")
	// ErrNotInteger: < or > met an attribute whose value is not a base-10 int64.
	ErrNotInteger = errors.New("not an integer")
)

// A SyntaxError reports why Parse rejected a policy and where.
type SyntaxError struct {
	// Offset is the byte offset of the problem in the source; Line and Column (both from 1,
	// Column counted in characters, a tab counting as one) locate it for people. Line and
	// Column are 0 when the problem has no single place, such as an oversized source.
	Offset       int
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	switch {
	case e.Line == 0:
		return "policy: " + e.Msg
	case e.Line == 1:
		return fmt.Sprintf("policy: at column %d: %s", e.Column, e.Msg)
	default:
		return fmt.Sprintf("policy: at line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
}

// syntaxError locates byte offset off in src.
func syntaxError(src string, off int, msg string) *SyntaxError {
	line, col := position(src, off)
	return &SyntaxError{Offset: off, Line: line, Column: col, Msg: msg}
}

// position returns the 1-based line and character column of byte offset off in src.
func position(src string, off int) (line, col int) {
	before := src[:off]
	line = 1 + strings.Count(before, "\n")
	if i := strings.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return line, 1 + utf8.RuneCountInString(before)
}

// where names byte offset off in src for a message that points at a second place; it gives
// the line whenever src has several, since the message may be about another line.
func where(src string, off int) string {
	line, col := position(src, off)
	if !strings.Contains(src, "\n") {
		return fmt.Sprintf("column %d", col)
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}
