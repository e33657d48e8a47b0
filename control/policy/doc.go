// Package policy parses and evaluates attribute-based access policies: small s-expressions
// over the attributes of an authenticated peer, in the style of Ockam's ABAC policies, such as
//
//	(and (= subject.role "analyst") (= subject.project_member "true"))
//
// Every inlet, outlet and relay is guarded by a Policy. The caller evaluates it once per new
// channel or portal connection against the attributes of the peer's verified credential and
// admits the peer only when Evaluate returns true with a nil error: a policy that fails to
// parse or to evaluate denies. AllowMembers is the default policy.
//
// The package evaluates expressions and nothing more. It does not know where attributes come
// from (verifying the credential that carries them is the caller's job), which resource a
// policy guards, or where policies are stored; the caller passes a plain map of attribute
// name to value and acts on the answer.
//
// # Language
//
// A policy is one condition. Conditions are true, false, or a parenthesised operator with
// its arguments:
//
//	(and C1 C2 ...)          true when every Ci is; stops at the first false one
//	(or C1 C2 ...)           true when any Ci is; stops at the first true one
//	(not C)
//	(if C THEN ELSE)         THEN when C is true, else ELSE (both conditions)
//	(= V1 V2)  (!= V1 V2)    V1 equals (does not equal) V2, compared as strings
//	(< N1 N2)  (> N1 N2)     integer comparison
//	(member? V [V1 V2 ...])  V equals one of the listed literals, compared as strings
//	(exists? subject.NAME)   the peer carries attribute NAME
//
// Values V are "strings" (with \" and \\ as the only escapes; no control characters),
// decimal integers (-?(0|[1-9][0-9]*), within int64), true and false (as values, the
// strings "true" and "false"), and attributes subject.NAME, where NAME is made of ASCII
// letters, digits, '_', '-' and '.'. N is an integer literal or an attribute whose value
// parses as a base-10 int64. A list [ ... ] holds literals only, separated by white space,
// and appears only as the second argument of member?.
//
// The attribute map is keyed by NAME without the "subject." prefix: subject.role reads
// attrs["role"].
//
// # Missing attributes and errors
//
// A missing attribute equals nothing, not even another missing attribute: = is false and
// != is true, so (!= a b) always means (not (= a b)); member? is false. Beware that
// (!= subject.team "ops") therefore admits a peer with no team at all; write
// (and (exists? subject.team) (!= subject.team "ops")) to require one.
//
// < and > need integers: a missing or non-integer attribute is an evaluation error
// (ErrMissingAttribute, ErrNotInteger), and any evaluation error denies the whole policy,
// even inside or or not — treating it as false there would turn (not (> subject.level 3))
// into an admission. Guard optional attributes with exists?, which short-circuits:
// (and (exists? subject.level) (> subject.level 3)).
//
// # Limits and canonical form
//
// Parse rejects, as a *SyntaxError with the line and column of the problem, sources over
// MaxSourceBytes, nesting (of parentheses and brackets) deeper than MaxDepth and policies
// of more than MaxTerms terms, so an untrusted policy can neither exhaust the stack nor
// allocate much. Arity and argument kinds are checked when parsing; only attribute values
// are checked when evaluating.
//
// String prints the canonical form: single spaces, no other white space, minimal escapes.
// Parse(p.String()) yields an equal policy with the same canonical form; a source whose
// canonical form would exceed MaxSourceBytes is rejected so that this always holds.
package policy
