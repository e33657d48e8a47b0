package node

import (
	"context"
	"fmt"
	"net/http"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/hub"
)

// authorityCall runs an authority operation: directly on the hub, as the hub; over the
// session on a member, which the hub allows to enrollers.
func (n *Node) authorityCall(ctx context.Context, req hub.AuthorityRequest, resp any) error {
	p := n.project.Load()
	if p == nil {
		return errNoProject
	}
	if !p.hub {
		return n.callHub(ctx, authorityWorker, req, resp)
	}
	out, err := p.service.Local(ctx, req)
	if err != nil {
		return &statusError{http.StatusBadRequest, err}
	}
	return assign(resp, out)
}

// assign copies out into resp, which points to a value of out's type (or is nil).
func assign(resp, out any) error {
	switch r := resp.(type) {
	case nil:
	case *api.Ticket:
		*r = out.(api.Ticket)
	case *[]api.Member:
		*r = out.([]api.Member)
	case *api.MemberDeleted:
		*r = out.(api.MemberDeleted)
	default:
		return fmt.Errorf("internal: cannot assign %T", out)
	}
	return nil
}

func (n *Node) createTicket(ctx context.Context, req api.CreateTicket) (api.Ticket, error) {
	opts := authority.TicketOptions{Attributes: req.Attributes, Relay: req.Relay, Enroller: req.Enroller, Uses: req.Uses, ExpiresIn: req.ExpiresIn}
	if err := authority.CheckTicket(opts); err != nil { // the hub checks again
		return api.Ticket{}, &statusError{http.StatusBadRequest, fmt.Errorf("project ticket: %w", err)}
	}
	var t api.Ticket
	err := n.authorityCall(ctx, hub.Ticket{Options: opts}, &t)
	return t, err
}

// credentialInfo describes the node's credential of its project.
func (m *membership) credentialInfo() (api.Credential, error) {
	p := m.Load()
	if p == nil {
		return api.Credential{}, errNoProject
	}
	b := p.cred.Load()
	if b == nil {
		return api.Credential{}, fmt.Errorf("no credential yet; the node fetches one from the hub of project %s", p.name)
	}
	c := b.Credential
	return api.Credential{Subject: string(c.Subject()), Issuer: string(c.Issuer()), Attributes: c.Attributes(), Issued: c.Issued(), Expires: c.Expires()}, nil
}
