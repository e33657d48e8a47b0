package policy

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

type attrs = map[string]string

func TestEvaluate(t *testing.T) {
	tests := []struct {
		policy  string
		attrs   attrs
		want    bool
		wantErr error
	}{
		{`true`, nil, true, nil},
		{`false`, attrs{"project_member": "true"}, false, nil},

		// = and != compare strings; a missing attribute equals nothing.
		{`(= subject.role "analyst")`, attrs{"role": "analyst"}, true, nil},
		{`(= subject.role "analyst")`, attrs{"role": "Analyst"}, false, nil},
		{`(= subject.role "analyst")`, attrs{}, false, nil},
		{`(= subject.role "")`, attrs{}, false, nil},
		{`(= subject.role "")`, attrs{"role": ""}, true, nil},
		{`(= subject.a subject.b)`, attrs{}, false, nil},
		{`(= subject.a subject.b)`, attrs{"a": "x", "b": "x"}, true, nil},
		{`(!= subject.team "ops")`, attrs{"team": "ops"}, false, nil},
		{`(!= subject.team "ops")`, attrs{"team": "dev"}, true, nil},
		{`(!= subject.team "ops")`, attrs{}, true, nil},
		{`(!= subject.a subject.b)`, attrs{}, true, nil},
		{`(= subject.level 3)`, attrs{"level": "3"}, true, nil},
		{`(= subject.level 3)`, attrs{"level": "03"}, false, nil},
		{`(= subject.admin true)`, attrs{"admin": "true"}, true, nil},
		{`(= subject.admin true)`, attrs{"admin": "True"}, false, nil},

		// < and > parse integers.
		{`(> subject.level 3)`, attrs{"level": "4"}, true, nil},
		{`(> subject.level 3)`, attrs{"level": "3"}, false, nil},
		{`(> subject.level 3)`, attrs{"level": "-10"}, false, nil},
		{`(< subject.level 3)`, attrs{"level": "-10"}, true, nil},
		{`(< subject.level 3)`, attrs{"level": "+2"}, true, nil},
		{`(< subject.a subject.b)`, attrs{"a": "9", "b": "10"}, true, nil}, // not string order
		{`(> subject.level 3)`, attrs{}, false, ErrMissingAttribute},
		{`(> subject.level 3)`, attrs{"level": "high"}, false, ErrNotInteger},
		{`(> subject.level 3)`, attrs{"level": "4.0"}, false, ErrNotInteger},
		{`(> subject.level 3)`, attrs{"level": "99999999999999999999"}, false, ErrNotInteger},
		{`(< 1 2)`, nil, true, nil},

		// member? and exists?.
		{`(member? subject.region ["eu" "us"])`, attrs{"region": "us"}, true, nil},
		{`(member? subject.region ["eu" "us"])`, attrs{"region": "ap"}, false, nil},
		{`(member? subject.region ["eu" "us"])`, attrs{}, false, nil},
		{`(member? subject.region [])`, attrs{"region": "eu"}, false, nil},
		{`(member? subject.level [1 2 true])`, attrs{"level": "2"}, true, nil},
		{`(member? subject.level [1 2 true])`, attrs{"level": "true"}, true, nil},
		{`(exists? subject.relay)`, attrs{"relay": ""}, true, nil},
		{`(exists? subject.relay)`, attrs{"relays": "x"}, false, nil},

		// and, or, not, if, and short-circuiting past what would be errors.
		{`(and true true true)`, nil, true, nil},
		{`(and true false true)`, nil, false, nil},
		{`(or false false true)`, nil, true, nil},
		{`(or false false)`, nil, false, nil},
		{`(not false)`, nil, true, nil},
		{`(and (exists? subject.level) (> subject.level 3))`, attrs{}, false, nil},
		{`(and (exists? subject.level) (> subject.level 3))`, attrs{"level": "5"}, true, nil},
		{`(or (= subject.role "admin") (> subject.level 3))`, attrs{"role": "admin"}, true, nil},
		{`(if (exists? subject.level) (> subject.level 3) true)`, attrs{}, true, nil},
		{`(if (exists? subject.level) (> subject.level 3) true)`, attrs{"level": "2"}, false, nil},
		{`(if false (> subject.level 3) false)`, attrs{}, false, nil},
		// An error denies the whole policy, whatever surrounds it.
		{`(or (> subject.level 3) (= subject.role "admin"))`, attrs{"role": "admin"}, false, ErrMissingAttribute},
		{`(not (> subject.level 3))`, attrs{}, false, ErrMissingAttribute},
		{`(if (> subject.level 3) true true)`, attrs{"level": "x"}, false, ErrNotInteger},
		{`(> 3 subject.level)`, attrs{"level": "x"}, false, ErrNotInteger},
	}
	for _, tt := range tests {
		p := MustParse(tt.policy)
		got, err := p.Evaluate(tt.attrs)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("Parse(%q).Evaluate(%v) = %v, %v; want %v, %v", tt.policy, tt.attrs, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestTruthTable checks the example policies against every combination of their attributes
// being missing, matching or not.
func TestTruthTable(t *testing.T) {
	roles := []string{"", "analyst", "viewer"} // "" means missing
	members := []string{"", "true", "false"}
	p := MustParse(`(and (= subject.role "analyst") (= subject.project_member "true"))`)
	for _, role := range roles {
		for _, member := range members {
			a := attrs{}
			if role != "" {
				a["role"] = role
			}
			if member != "" {
				a["project_member"] = member
			}
			want := role == "analyst" && member == "true"
			if got, err := p.Evaluate(a); got != want || err != nil {
				t.Errorf("%s.Evaluate(%v) = %v, %v; want %v, <nil>", p, a, got, err, want)
			}
		}
	}

	q := MustParse(`(and (exists? subject.relay) (not (= subject.team "ops")) (> subject.level 3))`)
	for _, relay := range []string{"", "db"} {
		for _, team := range []string{"", "ops", "dev"} {
			for _, level := range []string{"3", "4"} {
				a := attrs{"level": level}
				if relay != "" {
					a["relay"] = relay
				}
				if team != "" {
					a["team"] = team
				}
				want := relay != "" && team != "ops" && level == "4"
				if got, err := q.Evaluate(a); got != want || err != nil {
					t.Errorf("%s.Evaluate(%v) = %v, %v; want %v, <nil>", q, a, got, err, want)
				}
			}
		}
	}
}

// TestTwoAttributesRejectOne: a policy needing two attributes rejects a credential that
// carries only one of them, whichever it is.
func TestTwoAttributesRejectOne(t *testing.T) {
	p := MustParse(`(and (= subject.role "analyst") (= subject.project_member "true"))`)
	for _, a := range []attrs{
		{"role": "analyst"},
		{"project_member": "true"},
		{"role": "analyst", "project-member": "true"},
	} {
		if got, err := p.Evaluate(a); got || err != nil {
			t.Errorf("%s.Evaluate(%v) = %v, %v; want false, <nil>", p, a, got, err)
		}
	}
	a := attrs{"role": "analyst", "project_member": "true"}
	if got, err := p.Evaluate(a); !got || err != nil {
		t.Errorf("%s.Evaluate(%v) = %v, %v; want true, <nil>", p, a, got, err)
	}
}

func TestEvaluateErrorMessages(t *testing.T) {
	tests := []struct {
		policy string
		attrs  attrs
		want   string
	}{
		{`(and (exists? subject.relay) (> subject.level 3))`, attrs{"relay": "db"}, `policy: (> subject.level 3): subject.level: attribute missing`},
		{`(and (exists? subject.relay) (> subject.level 3))`, attrs{"relay": "db", "level": "high\n"}, `policy: (> subject.level 3): subject.level is "high\n": not an integer`},
	}
	for _, tt := range tests {
		_, err := MustParse(tt.policy).Evaluate(tt.attrs)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q).Evaluate(%v) error = %v, want %s", tt.policy, tt.attrs, err, tt.want)
		}
	}
}

func TestEvaluateNoPolicy(t *testing.T) {
	for _, p := range []*Policy{nil, {}} {
		if got, err := p.Evaluate(attrs{"project_member": "true"}); got || !errors.Is(err, ErrNoPolicy) {
			t.Errorf("(%#v).Evaluate(...) = %v, %v; want false, %v", p, got, err, ErrNoPolicy)
		}
	}
}

func TestExplain(t *testing.T) {
	tests := []struct {
		policy string
		attrs  attrs
		want   string
	}{
		{`(and (= subject.role "analyst") (= subject.project_member "true"))`, attrs{"role": "analyst", "project_member": "true"}, ``},
		{`(and (= subject.role "analyst") (= subject.project_member "true"))`, attrs{"role": "analyst"}, `denied by (= subject.project_member "true"): subject.project_member missing`},
		{`(and (= subject.role "analyst") (= subject.project_member "true"))`, attrs{"role": "viewer\x1b[31m"}, `denied by (= subject.role "analyst"): subject.role="viewer\x1b[31m"`},
		{`(or (= subject.a subject.b) (= subject.a "x"))`, attrs{"a": "y"}, `denied by (or (= subject.a subject.b) (= subject.a "x")): subject.a="y", subject.b missing`},
		{`false`, nil, `denied by false`},
		{`(> subject.level 3)`, nil, `denied: policy: (> subject.level 3): subject.level: attribute missing`},
	}
	for _, tt := range tests {
		if got := MustParse(tt.policy).Explain(tt.attrs); got != tt.want {
			t.Errorf("Parse(%q).Explain(%v)\n got %s\nwant %s", tt.policy, tt.attrs, got, tt.want)
		}
	}
	var p *Policy
	if got, want := p.Explain(nil), "denied: policy: no policy"; got != want {
		t.Errorf("(*Policy)(nil).Explain(nil) = %q, want %q", got, want)
	}
}

func TestEvaluateAllocs(t *testing.T) {
	p := MustParse(`(and (exists? subject.relay) (not (= subject.team "ops")) (> subject.level 3) (member? subject.region ["eu" "us"]) (if (< subject.level 10) true false))`)
	for _, a := range []attrs{
		{"relay": "db", "team": "dev", "level": "4", "region": "eu"}, // allow
		{"relay": "db", "team": "ops", "level": "4", "region": "eu"}, // deny
		{},
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := p.Evaluate(a); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Evaluate(%v) made %v allocations, want 0", a, allocs)
		}
	}
}

// TestEvaluateConcurrent shares one policy among goroutines; run with -race.
func TestEvaluateConcurrent(t *testing.T) {
	p := AllowMembers()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			a := attrs{"project_member": fmt.Sprint(i%2 == 0)}
			for range 100 {
				if got, err := p.Evaluate(a); got != (i%2 == 0) || err != nil {
					t.Errorf("%s.Evaluate(%v) = %v, %v; want %v, <nil>", p, a, got, err, i%2 == 0)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkEvaluate(b *testing.B) {
	for _, bb := range []struct {
		name, policy string
	}{
		{"policy=default", `(= subject.project_member "true")`},
		{"policy=mixed", `(and (exists? subject.relay) (not (= subject.team "ops")) (> subject.level 3) (member? subject.region ["eu" "us" "ap"]))`},
	} {
		b.Run(bb.name, func(b *testing.B) {
			p := MustParse(bb.policy)
			a := attrs{"project_member": "true", "relay": "db", "team": "dev", "level": "4", "region": "ap", "identifier": "I0123"}
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := p.Evaluate(a); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	src := `(and (exists? subject.relay) (not (= subject.team "ops")) (> subject.level 3) (member? subject.region ["eu" "us" "ap"]))`
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}
