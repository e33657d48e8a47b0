package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// Evaluate reports whether the policy admits a peer with the given attributes, keyed by
// name without "subject.". Only true with a nil error admits. An error (a < or > over a
// missing or non-integer attribute, or a nil policy) comes with false and says why, for the
// caller to log; Explain says why a policy that evaluated to false did so.
//
// Evaluate does not allocate unless it fails, and does not modify attrs.
func (p *Policy) Evaluate(attrs map[string]string) (bool, error) {
	if p == nil || p.root.op == opInvalid {
		return false, ErrNoPolicy
	}
	ok, err := p.eval(&p.root, attrs)
	if err != nil {
		return false, err
	}
	return ok, nil
}

func (p *Policy) eval(n *node, attrs map[string]string) (bool, error) {
	switch n.op {
	case opBool:
		return n.truth, nil
	case opAnd:
		for i := range n.args {
			if ok, err := p.eval(&n.args[i], attrs); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case opOr:
		for i := range n.args {
			if ok, err := p.eval(&n.args[i], attrs); err != nil || ok {
				return ok && err == nil, err
			}
		}
		return false, nil
	case opNot:
		ok, err := p.eval(&n.args[0], attrs)
		return !ok && err == nil, err
	case opIf:
		c, err := p.eval(&n.args[0], attrs)
		switch {
		case err != nil:
			return false, err
		case c:
			return p.eval(&n.args[1], attrs)
		default:
			return p.eval(&n.args[2], attrs)
		}
	case opEq, opNe:
		a, okA := n.args[0].value(attrs)
		b, okB := n.args[1].value(attrs)
		equal := okA && okB && a == b // a missing attribute equals nothing
		return equal == (n.op == opEq), nil
	case opLt, opGt:
		a, err := p.integer(n, &n.args[0], attrs)
		if err != nil {
			return false, err
		}
		b, err := p.integer(n, &n.args[1], attrs)
		if err != nil {
			return false, err
		}
		if n.op == opLt {
			return a < b, nil
		}
		return a > b, nil
	case opMember:
		v, ok := n.args[0].value(attrs)
		if !ok {
			return false, nil
		}
		for i := range n.args[1].args {
			if n.args[1].args[i].str == v {
				return true, nil
			}
		}
		return false, nil
	case opExists:
		_, ok := attrs[n.args[0].str]
		return ok, nil
	}
	// Parse builds only the conditions above; reaching here is a bug, and denies.
	return false, fmt.Errorf("policy: internal error: cannot evaluate term of kind %d", n.op)
}

// value returns the string value of a scalar term, and false for a missing attribute.
func (n *node) value(attrs map[string]string) (string, bool) {
	if n.op == opAttr {
		v, ok := attrs[n.str]
		return v, ok
	}
	return n.str, true
}

// integer returns the value of the integer literal or attribute a, an argument of cmp.
func (p *Policy) integer(cmp, a *node, attrs map[string]string) (int64, error) {
	if a.op == opInt {
		return a.num, nil
	}
	v, ok := attrs[a.str]
	if !ok {
		return 0, fmt.Errorf("policy: %s: subject.%s: %w", p.termText(cmp), a.str, ErrMissingAttribute)
	}
	i, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("policy: %s: subject.%s is %q: %w", p.termText(cmp), a.str, v, ErrNotInteger)
	}
	return i, nil
}

// Explain says, for a log line, why the policy denies a peer with attrs: the first clause of
// a top-level and that is false, or else the whole policy, with the values of the attributes
// it reads, such as
//
//	denied by (= subject.role "analyst"): subject.role="viewer"
//
// or the evaluation error. It returns "" when the policy admits attrs. Unlike Evaluate it
// allocates; call it after a denial.
func (p *Policy) Explain(attrs map[string]string) string {
	ok, err := p.Evaluate(attrs)
	switch {
	case err != nil:
		return "denied: " + err.Error()
	case ok:
		return ""
	}
	clause := &p.root
	if clause.op == opAnd {
		for i := range clause.args {
			if ok, _ := p.eval(&clause.args[i], attrs); !ok {
				clause = &clause.args[i]
				break
			}
		}
	}
	var b strings.Builder
	b.WriteString("denied by ")
	b.WriteString(p.termText(clause))
	seen := make(map[string]bool)
	sep := ": "
	clause.walk(func(n *node) {
		if n.op != opAttr || seen[n.str] {
			return
		}
		seen[n.str] = true
		b.WriteString(sep)
		sep = ", "
		if v, ok := attrs[n.str]; ok {
			fmt.Fprintf(&b, "subject.%s=%q", n.str, v)
		} else {
			fmt.Fprintf(&b, "subject.%s missing", n.str)
		}
	})
	return b.String()
}

// walk calls f on n and its descendants, depth first.
func (n *node) walk(f func(*node)) {
	f(n)
	for i := range n.args {
		n.args[i].walk(f)
	}
}
