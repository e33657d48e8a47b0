package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// parseOK maps sources to their canonical forms.
var parseOK = []struct{ src, want string }{
	{`(and (= subject.role "analyst") (= subject.project_member "true"))`, `(and (= subject.role "analyst") (= subject.project_member "true"))`},
	{`(or (member? subject.region ["eu" "us"]) (= subject.identifier "I0123"))`, `(or (member? subject.region ["eu" "us"]) (= subject.identifier "I0123"))`},
	{`(and (exists? subject.relay) (not (= subject.team "ops")) (> subject.level 3))`, `(and (exists? subject.relay) (not (= subject.team "ops")) (> subject.level 3))`},
	{`true`, `true`},
	{"  false\n", `false`},
	{"(and\n\t(= subject.a \"b\")\r\n  true )", `(and (= subject.a "b") true)`},
	{`(= subject.a"x")`, `(= subject.a "x")`},
	{`(member?  subject.r ["eu""us"] )`, `(member? subject.r ["eu" "us"])`},
	{`(member? subject.r ["eu" 3 -4 true false ""])`, `(member? subject.r ["eu" 3 -4 true false ""])`},
	{`(member? subject.r [])`, `(member? subject.r [])`},
	{`(member? "x" [ "x" ])`, `(member? "x" ["x"])`},
	{`(= subject.a "\"q\\")`, `(= subject.a "\"q\\")`},
	{`(= subject.a "é ü 日本")`, `(= subject.a "é ü 日本")`},
	{`(!= subject.a true)`, `(!= subject.a true)`},
	{`(= 0 subject.A_b-c.9)`, `(= 0 subject.A_b-c.9)`},
	{`(< -9223372036854775808 9223372036854775807)`, `(< -9223372036854775808 9223372036854775807)`},
	{`(> subject.level subject.min)`, `(> subject.level subject.min)`},
	{`(exists? subject.relay)`, `(exists? subject.relay)`},
	{`(if (exists? subject.a) (= subject.a "1") false)`, `(if (exists? subject.a) (= subject.a "1") false)`},
	{`(or true)`, `(or true)`},
	{`(not (not false))`, `(not (not false))`},
}

func TestParse(t *testing.T) {
	for _, tt := range parseOK {
		p, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q) error: %v", tt.src, err)
			continue
		}
		if got := p.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.src, got, tt.want)
		}
	}
}

// TestCanonicalFixpoint checks that printing and re-parsing yields an equal policy.
func TestCanonicalFixpoint(t *testing.T) {
	for _, tt := range parseOK {
		p := MustParse(tt.src)
		q, err := Parse(p.String())
		if err != nil {
			t.Errorf("Parse(%q) error: %v", p.String(), err)
			continue
		}
		if !reflect.DeepEqual(p, q) {
			t.Errorf("Parse(%q) = %#v, want %#v", p.String(), q, p)
		}
	}
}

const wantOps = "(want one of and, or, not, =, !=, <, >, member?, exists?, if)"

var parseErrors = []struct {
	src  string
	want string
	col  int
}{
	{`(not (and true (equals subject.a "b")))`, `policy: at column 17: unknown operator "equals" ` + wantOps, 17},
	{`(=subject.a "x")`, `policy: at column 2: unknown operator "=subject.a" ` + wantOps + `; put a space after =`, 2},
	{"(and\n  true\n  (bogus))", `policy: at line 3, column 4: unknown operator "bogus" ` + wantOps, 4},
	{``, `policy: at column 1: policy is empty; the default is (= subject.project_member "true")`, 1},
	{`   `, `policy: at column 4: policy is empty; the default is (= subject.project_member "true")`, 4},
	// Unbalanced brackets.
	{`(`, `policy: at column 1: ( is never closed`, 1},
	{`(and true (not true)`, `policy: at column 1: ( is never closed`, 1},
	{`)`, `policy: at column 1: unexpected ) with nothing open`, 1},
	{`(and true))`, `policy: at column 11: unexpected ) after the end of the policy`, 11},
	{`(and true]`, `policy: at column 10: ] does not match ( at column 1`, 10},
	{"(and\n  true]", `policy: at line 2, column 7: ] does not match ( at line 1, column 1`, 7},
	{`(member? subject.r ["a")`, `policy: at column 24: ) does not match [ at column 20`, 24},
	{`(member? subject.r ["a"`, `policy: at column 20: [ is never closed`, 20},
	{`()`, `policy: at column 1: empty expression (); want (operator arguments...)`, 1},
	{`((and true))`, `policy: at column 2: want an operator after (, got (`, 2},
	{`("and" true)`, `policy: at column 2: want an operator after (, got string "and"`, 2},
	{`(and true) true`, `policy: at column 12: unexpected "true" after the end of the policy`, 12},
	// Strings.
	{`(= subject.a "b`, `policy: at column 14: unterminated string; end it with "`, 14},
	{`(= subject.a "b\`, `policy: at column 14: unterminated string; end it with "`, 14},
	{`(= subject.a "b\n")`, `policy: at column 16: unknown escape \n in string (only \" and \\ are allowed)`, 16},
	{`(= subject.a "é\x")`, `policy: at column 16: unknown escape \x in string (only \" and \\ are allowed)`, 16},
	{"(= subject.a \"b\\\x01\")", `policy: at column 16: backslash before U+0001 in string (only \" and \\ are escapes)`, 16},
	{"(= subject.a \"b\x01\")", `policy: at column 16: control character U+0001 in string`, 16},
	{"(= subject.a \"line\nbreak\")", `policy: at column 19: control character U+000A in string`, 19},
	{"(= subject.a \"b\")\x00", `policy: at column 18: unexpected control character U+0000`, 18},
	{"(= subject.a \"\xff\")", `policy: at column 15: invalid UTF-8`, 15},
	// Arity.
	{`(= subject.a "b" "c")`, `policy: at column 2: = takes 2 arguments, got 3`, 2},
	{`(!= subject.a)`, `policy: at column 2: != takes 2 arguments, got 1`, 2},
	{`(and)`, `policy: at column 2: and takes at least 1 argument, got 0`, 2},
	{`(or)`, `policy: at column 2: or takes at least 1 argument, got 0`, 2},
	{`(not true false)`, `policy: at column 2: not takes 1 argument, got 2`, 2},
	{`(if true false)`, `policy: at column 2: if takes 3 arguments (condition, then, else), got 2`, 2},
	{`(exists?)`, `policy: at column 2: exists? takes 1 argument, got 0`, 2},
	{`(member? subject.a ["x"] ["y"])`, `policy: at column 2: member? takes 2 arguments, got 3`, 2},
	// Kinds of arguments.
	{`"x"`, `policy: at column 1: a policy must be a condition, got string "x"`, 1},
	{`subject.admin`, `policy: at column 1: a policy must be a condition, got subject.admin`, 1},
	{`["a"]`, `policy: at column 1: a policy must be a condition, got a list`, 1},
	{`(and subject.admin)`, `policy: at column 6: and wants a condition, got subject.admin; compare it, as in (= subject.admin "true")`, 6},
	{`(or true 3)`, `policy: at column 10: or wants a condition, got integer 3`, 10},
	{`(= subject.a (= subject.b "c"))`, `policy: at column 14: = wants a value ("string", integer, true, false or subject.NAME), got (= ...)`, 14},
	{`(= ["a"] subject.b)`, `policy: at column 4: = wants a value ("string", integer, true, false or subject.NAME), got a list`, 4},
	{`(< subject.level "3")`, `policy: at column 18: < compares integers, got string "3"; drop the quotes`, 18},
	{`(> subject.level true)`, `policy: at column 18: > compares integers: want an integer or subject.NAME, got true`, 18},
	{`(exists? "x")`, `policy: at column 10: exists? wants an attribute subject.NAME, got string "x"`, 10},
	{`(member? subject.r "eu")`, `policy: at column 20: member? wants a list [ ... ] as argument 2, got string "eu"`, 20},
	{`(member? subject.r [subject.x])`, `policy: at column 21: a list holds literals ("string", integer, true or false), got subject.x`, 21},
	{`(member? subject.r [["x"]])`, `policy: at column 21: a list holds literals ("string", integer, true or false), got a list`, 21},
	{`(member? subject.r ["eu", "us"])`, `policy: at column 25: unexpected comma; separate list elements with spaces`, 25},
	// Words.
	{`(exists? subject.)`, `policy: at column 10: attribute name missing after subject.`, 10},
	{`(= subject.r%le "x")`, `policy: at column 13: invalid character '%' in attribute name (want letters, digits, _ - .)`, 13},
	{`(= subject.é "x")`, `policy: at column 12: invalid character 'é' in attribute name (want letters, digits, _ - .)`, 12},
	{`(= subject.a analyst)`, `policy: at column 14: unknown word "analyst" (want "string", integer, true, false or subject.NAME)`, 14},
	{`(= resource.a "x")`, `policy: at column 4: unknown word "resource.a"; attributes are written subject.NAME`, 4},
	{`and`, `policy: at column 1: operator and outside parentheses; write (and ...)`, 1},
	{`(= subject.a 03)`, `policy: at column 14: integer 03 has a leading zero; write it without, or quote it if it is a string`, 14},
	{`(= subject.a -0)`, `policy: at column 14: write 0, not -0`, 14},
	{`(= subject.a 3x)`, `policy: at column 14: malformed integer "3x"`, 14},
	{`(= subject.a 9223372036854775808)`, `policy: at column 14: integer 9223372036854775808 out of range (want a 64-bit signed integer)`, 14},
	{`TRUE`, `policy: at column 1: unknown word "TRUE" (want "string", integer, true, false or subject.NAME)`, 1},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrors {
		p, err := Parse(tt.src)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want error %q", tt.src, p, tt.want)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("Parse(%q) error\n got %s\nwant %s", tt.src, got, tt.want)
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) error %T, want *SyntaxError", tt.src, err)
		} else if se.Column != tt.col {
			t.Errorf("Parse(%q) error column %d, want %d", tt.src, se.Column, tt.col)
		}
	}
}

func TestLimits(t *testing.T) {
	nots := func(n int) string { return strings.Repeat("(not ", n) + "true" + strings.Repeat(")", n) }
	trues := func(n int) string { return "(and" + strings.Repeat(" true", n) + ")" }
	// A compact source whose canonical form, with a space between list elements, is longer.
	long := `(member? "` + strings.Repeat("a", 3581) + `" [` + strings.Repeat(`""`, 250) + `])`
	tests := []struct {
		name, src, wantErr string
	}{
		{"depth=32", nots(MaxDepth), ""},
		{"depth=33", nots(MaxDepth + 1), "policy: at column 161: policy is nested more than 32 deep"},
		{"terms=256", trues(MaxTerms - 1), ""},
		{"terms=257", trues(MaxTerms), "policy: at column 1281: policy has more than 256 terms"},
		{"size=4096", "true" + strings.Repeat(" ", MaxSourceBytes-4), ""},
		{"size=4097", "true" + strings.Repeat(" ", MaxSourceBytes-3), "policy: policy is 4097 bytes, over the 4096-byte limit"},
		{"canonical=4345", long, "policy: canonical form of the policy is 4345 bytes, over the 4096-byte limit"},
	}
	if len(long) != MaxSourceBytes {
		t.Fatalf("len(long) = %d, want %d", len(long), MaxSourceBytes)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.src)
			var got string
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("Parse(...) error = %q, want %q", got, tt.wantErr)
			}
		})
	}
	t.Run("list depth", func(t *testing.T) {
		src := strings.Repeat("(not ", MaxDepth-1) + `(member? "a" ["a"])` + strings.Repeat(")", MaxDepth-1)
		if _, err := Parse(src); err == nil {
			t.Errorf("Parse(list at depth 33) succeeded, want error")
		}
		src = strings.Repeat("(not ", MaxDepth-2) + `(member? "a" ["a"])` + strings.Repeat(")", MaxDepth-2)
		if _, err := Parse(src); err != nil {
			t.Errorf("Parse(list at depth 32) error: %v", err)
		}
	})
	t.Run("huge input", func(t *testing.T) {
		huge := strings.Repeat("(", 10<<20)
		allocs := testing.AllocsPerRun(10, func() {
			if _, err := Parse(huge); err == nil {
				t.Fatal("Parse(10 MiB) succeeded")
			}
		})
		// A few for the error itself; nothing in proportion to the input.
		if allocs > 8 {
			t.Errorf("Parse(10 MiB) made %v allocations, want at most 8", allocs)
		}
	})
}

func TestMustParse(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Errorf("MustParse(%q) did not panic", "(and)")
		}
	}()
	MustParse("(and)")
}

func TestAllowMembers(t *testing.T) {
	if got, want := AllowMembers().String(), `(= subject.project_member "true")`; got != want {
		t.Errorf("AllowMembers() = %s, want %s", got, want)
	}
}

func TestNilPolicyString(t *testing.T) {
	var p *Policy
	if got := p.String(); got != "<nil>" {
		t.Errorf("(*Policy)(nil).String() = %q, want %q", got, "<nil>")
	}
}
