// Package ticket is the one-line enrollment ticket a hub hands out and a new member redeems:
// which project, how to reach its hub, the authority's identity (so the new member can check
// it talks to the right hub), and a one-time secret. What the secret grants (attributes, a
// relay name, how many uses, until when) stays on the hub; the ticket carries only the secret.
package ticket
