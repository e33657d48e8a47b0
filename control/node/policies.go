package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/adjacentnet/adjacent/control/policy"
	"github.com/adjacentnet/adjacent/control/state"
)

// Resource types that have policies.
var resourceTypes = []string{"echo", "relay", "tcp-outlet", "tcp-inlet"}

// policies is the node's policy table in memory, read from the state database: by resource
// name, then by resource type; what neither names gets the default (defaultPolicy).
type policies struct {
	mu     sync.RWMutex
	byName map[string]*policy.Policy
	byType map[string]*policy.Policy
	member func() bool // whether the node is in a project
}

func (ps *policies) load(ctx context.Context, st *state.Store) error {
	stored, err := st.Policies(ctx)
	if err != nil {
		return err
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.byName, ps.byType = map[string]*policy.Policy{}, map[string]*policy.Policy{}
	for _, sp := range stored {
		p, err := policy.Parse(sp.Expression)
		if err != nil {
			// A stored policy that no longer parses denies everything rather than nothing.
			p = policy.MustParse("false")
		}
		if sp.Kind == "type" {
			ps.byType[sp.Resource] = p
		} else {
			ps.byName[sp.Resource] = p
		}
	}
	return nil
}

// policyFunc returns the current policy of a resource, looked up on every call so changes
// apply at once.
func (ps *policies) policyFunc(resourceType, name string) func() *policy.Policy {
	return func() *policy.Policy { return ps.policyOf(resourceType, name) }
}

func (ps *policies) policyOf(resourceType, name string) *policy.Policy {
	ps.mu.RLock()
	p := ps.byName[name]
	if p == nil {
		p = ps.byType[resourceType]
	}
	ps.mu.RUnlock()
	if p == nil {
		p = ps.defaultPolicy()
	}
	return p
}

// defaultPolicy admits project members when the node is in a project; a node outside any
// project admits every authenticated peer (its channels may still be restricted with
// --authorized).
func (ps *policies) defaultPolicy() *policy.Policy {
	if ps.member() {
		return policy.AllowMembers()
	}
	return policy.AllowAll() // parsed once: a connect asks for it
}

// setPolicy parses, stores and applies a policy.
func (n *Node) setPolicy(ctx context.Context, kind, resource, expr string) (*policy.Policy, error) {
	if kind == "type" && !contains(resourceTypes, resource) {
		return nil, fmt.Errorf("policy create: unknown resource type %q (want one of %v)", resource, resourceTypes)
	}
	p, err := policy.Parse(expr)
	if err != nil {
		return nil, err
	}
	if err := n.state.PutPolicy(ctx, state.Policy{Kind: kind, Resource: resource, Expression: p.String()}); err != nil {
		return nil, err
	}
	if err := n.policies.load(ctx, n.state); err != nil {
		return nil, err
	}
	n.recheck.now() // live sessions the new policy refuses end now
	return p, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// deletePolicy removes a stored policy.
func (n *Node) deletePolicy(ctx context.Context, kind, resource string) error {
	if _, err := n.state.DeletePolicy(ctx, kind, resource); err != nil {
		return err
	}
	return n.policies.load(ctx, n.state)
}
