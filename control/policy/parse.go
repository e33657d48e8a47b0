package policy

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Parse parses a policy. Errors are *SyntaxError values that point at the problem.
func Parse(src string) (*Policy, error) {
	if len(src) > MaxSourceBytes {
		return nil, &SyntaxError{Msg: fmt.Sprintf("policy is %d bytes, over the %d-byte limit", len(src), MaxSourceBytes)}
	}
	if !utf8.ValidString(src) {
		off := 0
		for off < len(src) {
			r, size := utf8.DecodeRuneInString(src[off:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			off += size
		}
		return nil, syntaxError(src, off, "invalid UTF-8")
	}
	p := parser{src: src}
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokEOF {
		return nil, syntaxError(src, p.tok.pos, "policy is empty; the default is (= subject.project_member \"true\")")
	}
	pos := p.tok.pos
	root, err := p.parseTerm()
	if err != nil {
		return nil, err
	}
	if !root.isCond() {
		return nil, p.errorf(pos, "a policy must be a condition, got %s", root.describe())
	}
	if p.tok.kind != tokEOF {
		return nil, p.errorf(p.tok.pos, "unexpected %s after the end of the policy", p.tok.describe())
	}
	var b strings.Builder
	root.print(&b)
	if b.Len() > MaxSourceBytes {
		return nil, &SyntaxError{Msg: fmt.Sprintf("canonical form of the policy is %d bytes, over the %d-byte limit", b.Len(), MaxSourceBytes)}
	}
	return &Policy{root: root, text: b.String()}, nil
}

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokLParen
	tokRParen
	tokLBrack
	tokRBrack
	tokString
	tokWord
)

type token struct {
	kind tokKind
	pos  int    // byte offset of the first character
	text string // a word, or the unescaped contents of a string
}

func (t *token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of policy"
	case tokLParen:
		return "("
	case tokRParen:
		return ")"
	case tokLBrack:
		return "["
	case tokRBrack:
		return "]"
	case tokString:
		n := node{op: opString, str: t.text}
		return n.describe()
	default:
		return strconv.Quote(t.text)
	}
}

// parser is a recursive-descent parser over a one-token lookahead lexer. Recursion is
// bounded by MaxDepth, allocation by MaxTerms and the source size.
type parser struct {
	src   string
	off   int   // next unread byte
	tok   token // current token
	depth int
	terms int
}

func (p *parser) errorf(off int, format string, args ...any) error {
	return syntaxError(p.src, off, fmt.Sprintf(format, args...))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isControl(c byte) bool { return c < 0x20 || c == 0x7f }

// endsWord reports whether c ends a bare word.
func endsWord(c byte) bool {
	return isSpace(c) || isControl(c) || c == '(' || c == ')' || c == '[' || c == ']' || c == '"'
}

// next reads the next token into p.tok.
func (p *parser) next() error {
	for p.off < len(p.src) && isSpace(p.src[p.off]) {
		p.off++
	}
	start := p.off
	p.tok = token{pos: start}
	if start == len(p.src) {
		p.tok.kind = tokEOF
		return nil
	}
	switch c := p.src[start]; {
	case c == '(':
		p.tok.kind = tokLParen
	case c == ')':
		p.tok.kind = tokRParen
	case c == '[':
		p.tok.kind = tokLBrack
	case c == ']':
		p.tok.kind = tokRBrack
	case c == '"':
		return p.lexString()
	case isControl(c):
		return p.errorf(start, "unexpected control character U+%04X", c)
	default:
		end := start + 1
		for end < len(p.src) && !endsWord(p.src[end]) {
			end++
		}
		p.tok.kind, p.tok.text, p.off = tokWord, p.src[start:end], end
		return nil
	}
	p.off++
	return nil
}

// lexString reads a string literal starting at the quote at p.off.
func (p *parser) lexString() error {
	start := p.off
	var b strings.Builder // used only when the string has escapes
	from := start + 1     // first byte not yet copied to b
	for i := start + 1; i < len(p.src); i++ {
		switch c := p.src[i]; {
		case c == '"':
			text := p.src[from:i]
			if from > start+1 { // there were escapes
				b.WriteString(text)
				text = b.String()
			}
			p.tok.kind, p.tok.text, p.off = tokString, text, i+1
			return nil
		case c == '\\':
			if i+1 == len(p.src) {
				return p.errorf(start, "unterminated string; end it with \"")
			}
			if e := p.src[i+1]; e != '"' && e != '\\' {
				r, _ := utf8.DecodeRuneInString(p.src[i+1:])
				if !unicode.IsPrint(r) {
					return p.errorf(i, "backslash before U+%04X in string (only \\\" and \\\\ are escapes)", r)
				}
				return p.errorf(i, "unknown escape \\%c in string (only \\\" and \\\\ are allowed)", r)
			}
			b.WriteString(p.src[from:i])
			i++
			from = i // keep the escaped character
		case isControl(c):
			return p.errorf(i, "control character U+%04X in string", c)
		}
	}
	return p.errorf(start, "unterminated string; end it with \"")
}

// count charges one term at offset off against MaxTerms.
func (p *parser) count(off int) error {
	p.terms++
	if p.terms > MaxTerms {
		return p.errorf(off, "policy has more than %d terms", MaxTerms)
	}
	return nil
}

// enter opens a parenthesis or bracket at offset off, checking MaxDepth.
func (p *parser) enter(off int) error {
	p.depth++
	if p.depth > MaxDepth {
		return p.errorf(off, "policy is nested more than %d deep", MaxDepth)
	}
	return nil
}

// parseTerm parses the term starting at the current token.
func (p *parser) parseTerm() (node, error) {
	if err := p.count(p.tok.pos); err != nil {
		return node{}, err
	}
	switch p.tok.kind {
	case tokLParen:
		return p.parseCall()
	case tokLBrack:
		return p.parseList()
	case tokString:
		n := node{op: opString, str: p.tok.text}
		return n, p.next()
	case tokWord:
		n, err := p.parseWord()
		if err != nil {
			return node{}, err
		}
		return n, p.next()
	case tokEOF:
		return node{}, p.errorf(p.tok.pos, "unexpected end of policy")
	default: // ) or ] with nothing open: enclosing calls and lists stop before these
		return node{}, p.errorf(p.tok.pos, "unexpected %s with nothing open", p.tok.describe())
	}
}

// parseCall parses ( op args... ).
func (p *parser) parseCall() (node, error) {
	open := p.tok.pos
	if err := p.enter(open); err != nil {
		return node{}, err
	}
	if err := p.next(); err != nil {
		return node{}, err
	}
	switch p.tok.kind {
	case tokWord:
	case tokRParen:
		return node{}, p.errorf(open, "empty expression (); want (operator arguments...)")
	case tokEOF:
		return node{}, p.errorf(open, "( is never closed")
	default:
		return node{}, p.errorf(p.tok.pos, "want an operator after (, got %s", p.tok.describe())
	}
	o, ok := lookupOperator(p.tok.text)
	if !ok {
		var hint string
		for _, sym := range []string{"!=", "=", "<", ">"} {
			if strings.HasPrefix(p.tok.text, sym) {
				hint = "; put a space after " + sym
				break
			}
		}
		return node{}, p.errorf(p.tok.pos, "unknown operator %q (want one of %s)%s", p.tok.text, operatorNames, hint)
	}
	info, opPos := o.operator(), p.tok.pos
	if err := p.next(); err != nil {
		return node{}, err
	}
	var args []node
	for p.tok.kind != tokRParen {
		switch p.tok.kind {
		case tokEOF:
			return node{}, p.errorf(open, "( is never closed")
		case tokRBrack:
			return node{}, p.errorf(p.tok.pos, "] does not match ( at %s", where(p.src, open))
		}
		pos := p.tok.pos
		a, err := p.parseTerm()
		if err != nil {
			return node{}, err
		}
		if i := len(args); info.max < 0 || i < info.max {
			if err := p.check(info, i, &a, pos); err != nil {
				return node{}, err
			}
		}
		args = append(args, a)
	}
	if err := p.arity(info, len(args), opPos); err != nil {
		return node{}, err
	}
	p.depth--
	return node{op: o, args: args}, p.next()
}

// arity checks the argument count got of the operator at offset off.
func (p *parser) arity(info *operator, got, off int) error {
	var hint string
	if info.name == "if" {
		hint = " (condition, then, else)"
	}
	plural := func(n int) string {
		if n == 1 {
			return "argument"
		}
		return "arguments"
	}
	switch {
	case info.max < 0 && got < info.min:
		return p.errorf(off, "%s takes at least %d %s, got %d", info.name, info.min, plural(info.min), got)
	case info.max >= 0 && got != info.max:
		return p.errorf(off, "%s takes %d %s%s, got %d", info.name, info.max, plural(info.max), hint, got)
	}
	return nil
}

// check checks that argument i, a, of the operator suits it; pos is where a starts.
func (p *parser) check(info *operator, i int, a *node, pos int) error {
	w := info.args[min(i, len(info.args)-1)]
	switch w {
	case wantCond:
		if a.isCond() {
			return nil
		}
		if a.op == opAttr {
			return p.errorf(pos, "%s wants a condition, got %s; compare it, as in (= subject.%s \"true\")", info.name, a.describe(), a.str)
		}
		return p.errorf(pos, "%s wants a condition, got %s", info.name, a.describe())
	case wantValue:
		if a.isScalar() {
			return nil
		}
		return p.errorf(pos, "%s wants a value (\"string\", integer, true, false or subject.NAME), got %s", info.name, a.describe())
	case wantNumber:
		if a.op == opInt || a.op == opAttr {
			return nil
		}
		if a.op == opString {
			if _, err := strconv.ParseInt(a.str, 10, 64); err == nil {
				return p.errorf(pos, "%s compares integers, got %s; drop the quotes", info.name, a.describe())
			}
		}
		return p.errorf(pos, "%s compares integers: want an integer or subject.NAME, got %s", info.name, a.describe())
	case wantAttr:
		if a.op == opAttr {
			return nil
		}
		return p.errorf(pos, "%s wants an attribute subject.NAME, got %s", info.name, a.describe())
	default: // wantList
		if a.op == opList {
			return nil
		}
		return p.errorf(pos, "%s wants a list [ ... ] as argument %d, got %s", info.name, i+1, a.describe())
	}
}

// parseList parses [ literals... ].
func (p *parser) parseList() (node, error) {
	open := p.tok.pos
	if err := p.enter(open); err != nil {
		return node{}, err
	}
	if err := p.next(); err != nil {
		return node{}, err
	}
	var elems []node
	for p.tok.kind != tokRBrack {
		switch p.tok.kind {
		case tokEOF:
			return node{}, p.errorf(open, "[ is never closed")
		case tokRParen:
			return node{}, p.errorf(p.tok.pos, ") does not match [ at %s", where(p.src, open))
		}
		pos := p.tok.pos
		e, err := p.parseTerm()
		if err != nil {
			return node{}, err
		}
		if e.op != opString && e.op != opInt && e.op != opBool {
			return node{}, p.errorf(pos, "a list holds literals (\"string\", integer, true or false), got %s", e.describe())
		}
		elems = append(elems, e)
	}
	p.depth--
	return node{op: opList, args: elems}, p.next()
}

// parseWord classifies the bare word in p.tok: true, false, an integer or an attribute.
func (p *parser) parseWord() (node, error) {
	w, pos := p.tok.text, p.tok.pos
	switch {
	case w == "true" || w == "false":
		return node{op: opBool, truth: w == "true", str: w}, nil
	case w[0] >= '0' && w[0] <= '9' || w[0] == '-' && len(w) > 1 && w[1] >= '0' && w[1] <= '9':
		return p.parseInt(w, pos)
	case strings.HasPrefix(w, "subject."):
		name := w[len("subject."):]
		if name == "" {
			return node{}, p.errorf(pos, "attribute name missing after subject.")
		}
		for i := 0; i < len(name); {
			r, size := utf8.DecodeRuneInString(name[i:])
			if !isNameRune(r) {
				return node{}, p.errorf(pos+len("subject.")+i, "invalid character %q in attribute name (want letters, digits, _ - .)", r)
			}
			i += size
		}
		return node{op: opAttr, str: name}, nil
	}
	if _, ok := lookupOperator(w); ok {
		return node{}, p.errorf(pos, "operator %s outside parentheses; write (%s ...)", w, w)
	}
	if w[0] == ',' {
		return node{}, p.errorf(pos, "unexpected comma; separate list elements with spaces")
	}
	if strings.Contains(w, ".") {
		return node{}, p.errorf(pos, "unknown word %q; attributes are written subject.NAME", w)
	}
	return node{}, p.errorf(pos, "unknown word %q (want \"string\", integer, true, false or subject.NAME)", w)
}

func isNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
}

// parseInt parses an integer literal in canonical form, -?(0|[1-9][0-9]*), so that it
// prints and compares as written.
func (p *parser) parseInt(w string, pos int) (node, error) {
	digits := strings.TrimPrefix(w, "-")
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return node{}, p.errorf(pos, "malformed integer %q", w)
		}
	}
	switch {
	case w == "-0":
		return node{}, p.errorf(pos, "write 0, not -0")
	case len(digits) > 1 && digits[0] == '0':
		return node{}, p.errorf(pos, "integer %s has a leading zero; write it without, or quote it if it is a string", w)
	}
	v, err := strconv.ParseInt(w, 10, 64)
	if err != nil {
		return node{}, p.errorf(pos, "integer %s out of range (want a 64-bit signed integer)", w)
	}
	return node{op: opInt, num: v, str: w}, nil
}
