package policy_test

import (
	"fmt"

	"github.com/adjacentnet/adjacent/control/policy"
)

func Example() {
	p, err := policy.Parse(`(and (= subject.role "analyst")
	                              (= subject.project_member "true"))`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p)

	peer := map[string]string{"role": "analyst"} // from the peer's verified credential
	if ok, err := p.Evaluate(peer); !ok {
		fmt.Println(ok, err, p.Explain(peer))
	}
	// Output:
	// (and (= subject.role "analyst") (= subject.project_member "true"))
	// false <nil> denied by (= subject.project_member "true"): subject.project_member missing
}

func ExampleParse_error() {
	_, err := policy.Parse(`(and (= subject.role "analyst") (equals subject.team "ops"))`)
	fmt.Println(err)
	// Output:
	// policy: at column 34: unknown operator "equals" (want one of and, or, not, =, !=, <, >, member?, exists?, if)
}
