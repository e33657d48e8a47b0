// Package hub holds the services a project's hub runs for its members, each its own type
// with a typed configuration: the authority service (AuthorityService: enrollment,
// credential refresh, the revocations in force (in pages of MaxRevocationsAnswer that a
// member walks with Revocations.After), and for enrollers tickets and member
// management) and the relay service (RelayService: relays created, deleted and listed by
// members, capped per identity, each remembering its owner and the clients it admitted).
// The node (control/node) wires them: it registers them as rpc workers behind its listener
// and gives them what they need of it through small interfaces and functions (Revoked,
// Members, RelayOwners, the relay's policy, the refusal counters).
//
// Requests are typed: one Go type per operation (Enroll, Credential, Revocations, Ticket,
// MemberList, MemberAdd, MemberDelete; RelayCreate, RelayDelete, RelayList), each encoded
// to the JSON wire form of control/rpc ({"op": ..., and the fields of that op}) and decoded
// by DecodeAuthority or DecodeRelay, which bound the message and refuse unknown fields,
// fields of another operation and trailing data. A service dispatches on the decoded type,
// never on a string.
//
// A newcomer adding a hub role (metrics, say) adds a type here with its Config and tests,
// and one line in the node that wires it.
package hub
