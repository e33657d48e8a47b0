package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// measure returns the nesting depth and number of terms of n.
func measure(n *node) (depth, terms int) {
	terms = 1
	for i := range n.args {
		d, t := measure(&n.args[i])
		depth = max(depth, d)
		terms += t
	}
	if n.op == opList || n.op >= opAnd {
		depth++
	}
	return depth, terms
}

var fuzzAttrs = []attrs{
	nil,
	{"role": "analyst", "project_member": "true", "level": "4", "a": "1", "b": "x"},
	{"level": "high", "a": "", "relay": "db"},
}

func FuzzParse(f *testing.F) {
	for _, tt := range parseOK {
		f.Add(tt.src)
	}
	for _, tt := range parseErrors {
		f.Add(tt.src)
	}
	f.Add(strings.Repeat("(not ", MaxDepth) + "true" + strings.Repeat(")", MaxDepth))
	f.Add("(and" + strings.Repeat(" true", MaxTerms-1) + ")")
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T (%v), want *SyntaxError", src, err, err)
			}
			if se.Offset < 0 || se.Offset > len(src) || se.Line < 0 || se.Column < 0 {
				t.Fatalf("Parse(%q) error position %+v out of range", src, se)
			}
			return
		}
		if len(src) > MaxSourceBytes {
			t.Fatalf("Parse accepted %d bytes, over %d", len(src), MaxSourceBytes)
		}
		if depth, terms := measure(&p.root); depth > MaxDepth || terms > MaxTerms {
			t.Fatalf("Parse(%q) has depth %d and %d terms, want at most %d and %d", src, depth, terms, MaxDepth, MaxTerms)
		}

		// The canonical form parses to the same policy and prints the same.
		s := p.String()
		if len(s) > MaxSourceBytes {
			t.Fatalf("canonical form of %q is %d bytes, over %d", src, len(s), MaxSourceBytes)
		}
		q, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) (canonical form of %q) error: %v", s, src, err)
		}
		if q.String() != s {
			t.Fatalf("Parse(%q).String() = %q, not a fixpoint", s, q.String())
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("Parse(%q) = %#v, want %#v", s, q, p)
		}

		for _, a := range fuzzAttrs {
			ok, err := p.Evaluate(a)
			if ok && err != nil {
				t.Fatalf("%s.Evaluate(%v) = true, %v", p, a, err)
			}
			if why := p.Explain(a); (why == "") != (ok && err == nil) {
				t.Fatalf("%s.Explain(%v) = %q, but Evaluate = %v, %v", p, a, why, ok, err)
			}
		}

		// Truncated canonical forms: no panics, and none parses to the same policy.
		step := len(s)/16 + 1
		for i := 0; i < len(s); i += step {
			if r, err := Parse(s[:i]); err == nil && r.String() == s {
				t.Fatalf("Parse(%q) (prefix of %q) = the whole policy", s[:i], s)
			}
		}
	})
}
