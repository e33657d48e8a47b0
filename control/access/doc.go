// Package access puts policies in front of workers: a Gate admits a message only if the
// authenticated peer it came from satisfies the resource's current policy, and logs each
// denial with the reason. Messages from this node's own workers pass.
//
// Policies come from the policy package; the attributes from the peer (a secure channel's
// authenticated identity and its credential). Which policy guards which resource is decided
// by the caller through a Policy func, so a changed policy applies to the next message.
package access
