package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/authority/pgstore"
	"github.com/adjacentnet/adjacent/control/authority/sqlitestore"
	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/hub"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/routing"
)

// Settings of the project the node belongs to.
const (
	settingProject            = "project"
	settingProjectRole        = "project_role" // "hub" or "member"
	settingProjectHub         = "project_hub"  // members: route text of the hub's listener
	settingAuthority          = "project_authority"
	settingCredential         = "credential"
	settingLifetime           = "credential_lifetime"
	settingStore              = "project_store" // hubs: a postgres:// URL, or "" for SQLite
	settingSigningKey         = "credential_signing_key"
	settingSigningAttestation = "credential_signing_attestation"
	settingPublicAddress      = "project_public_address"
)

const (
	roleHub    = "hub"
	roleMember = "member"
)

// project is what the node knows of the project it belongs to.
type project struct {
	name      string
	hub       bool
	hubRoute  routing.Path // members: the hub's listener, e.g. /ip4/10.0.0.1/tcp/4000
	public    string       // hubs: the address members dial
	authority *identity.History
	cred      atomic.Pointer[credential.Bundle]
	auth      *authority.Authority       // hubs only
	service   *hub.AuthorityService      // hubs only: the authority's service to members
	relays    *hub.RelayService          // hubs only: the relays it serves
	session   atomic.Pointer[hubSession] // members: the session with the hub, once enrolled
	revoked   sync.Map                   // identity.Identifier -> time.Time: refuse until then

	// newest is a longer history of the authority, once learned (authority stays the one
	// loaded or enrolled with, for its identifier); newestMu serialises learning it.
	newest   atomic.Pointer[identity.History]
	newestMu sync.Mutex
}

// membership is the project the node belongs to (nil outside one, and while a node enrolls
// a provisional one), with what the node's trust, policies and routes read off it: the
// authority, the credential, the revoked members, the channel to the hub. Its data comes
// from the state database (loadProject), project create and enroll.
type membership struct {
	atomic.Pointer[project]
	now func() time.Time
}

func (p *project) credentials() []*credential.Bundle {
	if b := p.cred.Load(); b != nil {
		return []*credential.Bundle{b}
	}
	return nil
}

// loadProject reads the project settings, if the node belongs to a project.
func (n *Node) loadProject(ctx context.Context) (*project, error) {
	name, ok, err := n.state.Setting(ctx, settingProject)
	if err != nil || !ok {
		return nil, err
	}
	role, _, _ := n.state.Setting(ctx, settingProjectRole)
	p := &project{name: name, hub: role == roleHub}
	authHex, _, _ := n.state.Setting(ctx, settingAuthority)
	raw, err := hex.DecodeString(authHex)
	if err != nil {
		return nil, fmt.Errorf("node: project %s: stored authority: %w", name, err)
	}
	if p.authority, err = identity.DecodeHistory(raw); err != nil {
		return nil, fmt.Errorf("node: project %s: stored authority: %w", name, err)
	}
	if credHex, ok, _ := n.state.Setting(ctx, settingCredential); ok {
		if raw, err := hex.DecodeString(credHex); err == nil {
			if b, err := credential.DecodeBundle(raw); err == nil {
				p.cred.Store(b)
			}
		}
	}
	if p.hub {
		p.public, _, _ = n.state.Setting(ctx, settingPublicAddress)
		if p.auth, err = n.openAuthority(ctx, name); err != nil {
			return nil, err
		}
		if k := n.self.keys(); k.history.Len() > p.authority.Len() { // stopped mid-rotation
			if err := n.rotator.reattestSigningKey(ctx, p, k); err != nil {
				p.auth.Store().Close()
				return nil, fmt.Errorf("node: project %s: %w", name, err)
			}
		}
		p.service, p.relays = n.authorityService(p), n.relayService(p)
		if err := p.service.Load(ctx); err != nil {
			p.auth.Store().Close()
			return nil, err
		}
	} else {
		hub, _, _ := n.state.Setting(ctx, settingProjectHub)
		if p.hubRoute, err = routing.ParsePath(hub); err != nil {
			return nil, fmt.Errorf("node: project %s: stored hub route: %w", name, err)
		}
		n.newSession(p)
	}
	return p, nil
}

// openAuthority opens the hub's authority: its member store and credential-signing key.
func (n *Node) openAuthority(ctx context.Context, name string) (*authority.Authority, error) {
	dsn, _, _ := n.state.Setting(ctx, settingStore)
	var store authority.Store
	var err error
	if dsn == "" {
		store, err = sqlitestore.Open(n.cfg.Home.Authority())
	} else {
		store, err = pgstore.Open(ctx, dsn)
	}
	if err != nil {
		return nil, fmt.Errorf("node: project %s: member store: %w", name, err)
	}
	keyName, _, _ := n.state.Setting(ctx, settingSigningKey)
	key, err := n.vault.Ed25519(keyName)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("node: project %s: credential-signing key: %w", name, err)
	}
	attHex, _, _ := n.state.Setting(ctx, settingSigningAttestation)
	raw, _ := hex.DecodeString(attHex)
	att, err := identity.DecodeAttestation(raw)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("node: project %s: credential-signing attestation: %w", name, err)
	}
	lifetime := authority.DefaultLifetime
	if v, ok, _ := n.state.Setting(ctx, settingLifetime); ok {
		if d, err := time.ParseDuration(v); err == nil {
			lifetime = d
		}
	}
	return authority.New(authority.Config{
		Project: name, Identity: n.self.keys().history, Signer: key, Attested: att,
		Store: store, Lifetime: lifetime, Now: n.cfg.Now,
	})
}

// trustedAuthority is the trust.Config Authority: the project's authority, if any.
func (m *membership) trustedAuthority(id identity.Identifier) *identity.History {
	if p := m.Load(); p != nil && p.authority.Identifier() == id {
		return p.authorityHistory()
	}
	return nil
}

func (m *membership) credentials() []*credential.Bundle {
	if p := m.Load(); p != nil {
		return p.credentials()
	}
	return nil
}

// isRevoked reports whether the project's authority revoked id and its credentials may
// not have expired yet.
func (m *membership) isRevoked(id identity.Identifier) bool {
	p := m.Load()
	if p == nil {
		return false
	}
	until, ok := p.revoked.Load(id)
	return ok && m.now().Before(until.(time.Time))
}

// trustConfig is the node's trust configuration. A member of a project requires valid
// credentials from its peers; require is false only for enrolling and for the hub's
// listener, which new members reach before they have a credential.
func (n *Node) trustConfig(authorized []identity.Identifier, require bool) trust.Config {
	return trust.Config{
		Self:              n.self.trust(),
		Credentials:       n.project.credentials,
		Authority:         n.project.trustedAuthority,
		RequireCredential: require,
		Revoked:           n.project.isRevoked,
		Authorized:        authorized,
		Known:             n.histories.get,
		Learn:             n.histories.learn,
		Present:           n.self.present,
		RetiredKeyGrace:   n.project.retiredKeyGrace,
		Now:               n.cfg.Now,
		Refreshed:         func(routing.Peer) { n.recheck.now() },
	}
}

// retiredKeyGrace is how long after the authority rotated the signing keys its retired key
// attested still verify here: the project's credential lifetime plus clock skew, since what
// the authority signed before the rotation lives no longer, and a thief of the retired key
// gets no more. The hub knows the lifetime; a member reads it off its own credential.
// Without either, identity.RetiredKeyGrace (the longest lifetime a project may have).
func (m *membership) retiredKeyGrace() time.Duration {
	p := m.Load()
	if p == nil {
		return identity.RetiredKeyGrace
	}
	if p.auth != nil {
		return p.auth.Lifetime() + identity.MaxClockSkew
	}
	if b := p.cred.Load(); b != nil {
		return b.Credential.Expires().Sub(b.Credential.Issued()) + identity.MaxClockSkew
	}
	return identity.RetiredKeyGrace
}

// member reports whether the node belongs to a project (as hub or member).
func (n *Node) member() bool { return n.project.Load() != nil }

// restartListener replaces the secure-channel listener after the node joined a project, so
// it applies the project's trust from now on.
func (n *Node) restartListener() error {
	n.listenerMu.Lock()
	defer n.listenerMu.Unlock()
	if n.listener != nil {
		n.listener.Close()
		n.router.Unregister("echo")
	}
	return n.startListenerLocked()
}

var errNoProject = errors.New("this node is not in a project; create one with `adjacent project create` or join one with `adjacent enroll`")
