package policy

import (
	"strconv"
	"strings"
)

// print writes the canonical form of n to b and records where it lies in n.start, n.end.
func (n *node) print(b *strings.Builder) {
	n.start = b.Len()
	switch n.op {
	case opString:
		writeQuoted(b, n.str)
	case opInt:
		b.WriteString(n.str)
	case opAttr:
		b.WriteString("subject.")
		b.WriteString(n.str)
	case opBool:
		b.WriteString(strconv.FormatBool(n.truth))
	case opList:
		b.WriteByte('[')
		for i := range n.args {
			if i > 0 {
				b.WriteByte(' ')
			}
			n.args[i].print(b)
		}
		b.WriteByte(']')
	default:
		b.WriteByte('(')
		b.WriteString(n.op.operator().name)
		for i := range n.args {
			b.WriteByte(' ')
			n.args[i].print(b)
		}
		b.WriteByte(')')
	}
	n.end = b.Len()
}

// writeQuoted writes s as a policy string literal: quoted, with " and \ escaped.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// describe names a term for an error message: `string "x"`, `integer 3`, `subject.role`,
// `a list`, `(and ...)`.
func (n *node) describe() string {
	switch n.op {
	case opString:
		s := n.str
		if len(s) > 40 {
			s = strings.ToValidUTF8(s[:40], "") + "..."
		}
		var b strings.Builder
		b.WriteString("string ")
		writeQuoted(&b, s)
		return b.String()
	case opInt:
		return "integer " + n.str
	case opAttr:
		return "subject." + n.str
	case opBool:
		return strconv.FormatBool(n.truth)
	case opList:
		return "a list"
	default:
		return "(" + n.op.operator().name + " ...)"
	}
}
