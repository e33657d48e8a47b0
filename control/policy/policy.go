package policy

// Limits on what Parse accepts.
const (
	// MaxSourceBytes bounds both the source and its canonical form.
	MaxSourceBytes = 4096
	// MaxDepth bounds the nesting of parentheses and brackets; (= subject.a "b") is depth 1.
	MaxDepth = 32
	// MaxTerms bounds the number of terms: operators, values, lists and list elements.
	MaxTerms = 256
)

// A Policy is a parsed, immutable policy, safe for concurrent use. The zero Policy, like a
// nil one, denies everything.
type Policy struct {
	root node
	text string // canonical form
}

// op is the kind of a term.
type op uint8

const (
	opInvalid op = iota

	// Values.
	opString // str is the unescaped contents
	opInt    // num is the value, str its decimal text
	opAttr   // str is NAME, without "subject."
	opList   // args are the elements
	// opBool is both a value (the string "true" or "false" in str) and a condition (truth).
	opBool

	// Conditions; every op from opAnd on has an entry in operators.
	opAnd
	opOr
	opNot
	opEq
	opNe
	opLt
	opGt
	opMember
	opExists
	opIf
)

// node is one term of a policy.
type node struct {
	op    op
	truth bool
	num   int64
	str   string
	args  []node
	// start and end delimit the term's canonical text in Policy.text, for messages.
	start, end int
}

func (n *node) isCond() bool { return n.op == opBool || n.op >= opAnd }

func (n *node) isScalar() bool {
	return n.op == opString || n.op == opInt || n.op == opAttr || n.op == opBool
}

// want is the kind of term an operator takes in one argument position.
type want uint8

const (
	wantCond   want = iota
	wantValue       // string, integer, true, false or attribute
	wantNumber      // integer or attribute
	wantAttr        // attribute
	wantList        // list literal
)

// operator describes one operator: its name, arity (max < 0: unbounded) and the kind of
// each argument, the last repeating.
type operator struct {
	name     string
	min, max int
	args     []want
}

var operators = [...]operator{
	opAnd - opAnd:    {"and", 1, -1, []want{wantCond}},
	opOr - opAnd:     {"or", 1, -1, []want{wantCond}},
	opNot - opAnd:    {"not", 1, 1, []want{wantCond}},
	opEq - opAnd:     {"=", 2, 2, []want{wantValue}},
	opNe - opAnd:     {"!=", 2, 2, []want{wantValue}},
	opLt - opAnd:     {"<", 2, 2, []want{wantNumber}},
	opGt - opAnd:     {">", 2, 2, []want{wantNumber}},
	opMember - opAnd: {"member?", 2, 2, []want{wantValue, wantList}},
	opExists - opAnd: {"exists?", 1, 1, []want{wantAttr}},
	opIf - opAnd:     {"if", 3, 3, []want{wantCond}},
}

// operatorNames lists the operators for the unknown-operator message.
const operatorNames = "and, or, not, =, !=, <, >, member?, exists?, if"

func (o op) operator() *operator { return &operators[o-opAnd] }

func lookupOperator(name string) (op, bool) {
	for i := range operators {
		if operators[i].name == name {
			return opAnd + op(i), true
		}
	}
	return opInvalid, false
}

// MustParse is Parse for policies written into the program; it panics if src does not parse.
func MustParse(src string) *Policy {
	p, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return p
}

var allowMembers, allowAll = MustParse(`(= subject.project_member "true")`), MustParse("true")

// AllowAll returns the policy "true": it admits every authenticated peer.
func AllowAll() *Policy { return allowAll }

// AllowMembers returns the default policy, (= subject.project_member "true"): it admits any
// member holding a valid credential from the project's authority, given that the authority
// puts project_member="true" in every member's credential.
func AllowMembers() *Policy { return allowMembers }

// String returns the canonical form of the policy; Parse(p.String()) yields an equal policy.
func (p *Policy) String() string {
	if p == nil {
		return "<nil>"
	}
	return p.text
}

// termText is the canonical text of the term n of p.
func (p *Policy) termText(n *node) string { return p.text[n.start:n.end] }
