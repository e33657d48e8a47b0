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
	"github.com/adjacentnet/adjacent/control/policy"
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
			if err := n.reattestSigningKey(ctx, p, k); err != nil {
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
func (n *Node) trustedAuthority(id identity.Identifier) *identity.History {
	if p := n.project.Load(); p != nil && p.authority.Identifier() == id {
		return p.authorityHistory()
	}
	return nil
}

func (n *Node) credentials() []*credential.Bundle {
	if p := n.project.Load(); p != nil {
		return p.credentials()
	}
	return nil
}

func (n *Node) isRevoked(id identity.Identifier) bool {
	p := n.project.Load()
	if p == nil {
		return false
	}
	until, ok := p.revoked.Load(id)
	return ok && n.cfg.Now().Before(until.(time.Time))
}

// trustConfig is the node's trust configuration. A member of a project requires valid
// credentials from its peers; require is false only for enrolling and for the hub's
// listener, which new members reach before they have a credential.
func (n *Node) trustConfig(authorized []identity.Identifier, require bool) trust.Config {
	return trust.Config{
		Self:              n.self.trust(),
		Credentials:       n.credentials,
		Authority:         n.trustedAuthority,
		RequireCredential: require,
		Revoked:           n.isRevoked,
		Authorized:        authorized,
		Known:             n.knownHistory,
		Learn:             n.learnHistory,
		Present:           n.present,
		RetiredKeyGrace:   n.retiredKeyGrace,
		Now:               n.cfg.Now,
		Refreshed:         func(routing.Peer) { n.recheckPolicies() },
	}
}

// retiredKeyGrace is how long after the authority rotated the signing keys its retired key
// attested still verify here: the project's credential lifetime plus clock skew, since what
// the authority signed before the rotation lives no longer, and a thief of the retired key
// gets no more. The hub knows the lifetime; a member reads it off its own credential.
// Without either, identity.RetiredKeyGrace (the longest lifetime a project may have).
func (n *Node) retiredKeyGrace() time.Duration {
	p := n.project.Load()
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

// defaultPolicy admits project members when the node is in a project; a node outside any
// project admits every authenticated peer (its channels may still be restricted with
// --authorized).
func (n *Node) defaultPolicy() *policy.Policy {
	if n.member() {
		return policy.AllowMembers()
	}
	return policy.MustParse("true")
}

// saveCredential stores a fresh credential and presents it on every open channel.
func (n *Node) saveCredential(ctx context.Context, p *project, b *credential.Bundle) error {
	if err := n.state.SetSetting(ctx, settingCredential, hex.EncodeToString(b.Encode())); err != nil {
		return err
	}
	p.cred.Store(b)
	enc := b.Encode()
	for _, c := range n.channels.list() {
		c.SendRefresh(enc)
	}
	return nil
}

// revoke refuses id until then (when its credentials have expired anyway), closes its
// channels and, on a hub, drops the relays it holds.
func (n *Node) revoke(p *project, id identity.Identifier, until time.Time) {
	if old, ok := p.revoked.Load(id); !ok || old.(time.Time).Before(until) {
		p.revoked.Store(id, until)
	}
	for _, c := range n.channels.list() {
		if peer := c.Peer(); peer != nil && peer.Identifier() == string(id) {
			n.log.Info("closing channel of a revoked member", "peer", id, "channel", c.Address().Value)
			c.Close()
		}
	}
	if p.relays != nil {
		p.relays.DropOwnedBy(id)
	}
}

// credentialLoop refreshes the node's credential at half its lifetime, and closes channels
// whose peer's credential has expired or whose peer was revoked. A refresh runs on its own,
// one at a time: an authority slow to answer (its member store hanging) must not hold up
// closing the channels of expired peers.
func (n *Node) credentialLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastTry, lastReload time.Time
	var refreshing, reloading atomic.Bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p := n.project.Load()
		if p == nil {
			continue
		}
		now := n.cfg.Now()
		n.closeExpired(p, now)
		if p.hub && now.Sub(lastReload) >= revocationReload && reloading.CompareAndSwap(false, true) {
			lastReload = now
			go func() {
				defer reloading.Store(false)
				p.service.Reload(ctx)
			}()
		}
		if b := p.cred.Load(); b == nil || now.After(halfLife(b.Credential)) {
			if now.Sub(lastTry) > 5*time.Second && refreshing.CompareAndSwap(false, true) {
				lastTry = now
				// A refresh that hangs gives up well within the half-life left, so that the
				// hub still renews its own credential in time when its store hangs.
				wait := 10 * time.Second
				if b != nil {
					wait = min(wait, b.Credential.Expires().Sub(b.Credential.Issued())/4)
				}
				go func() {
					defer refreshing.Store(false)
					ctx, cancel := context.WithTimeout(ctx, wait)
					defer cancel()
					if err := n.refreshCredential(ctx, p); err != nil {
						n.log.Warn("credential refresh failed", "err", err)
					}
				}()
			}
		}
	}
}

func halfLife(c *credential.Credential) time.Time {
	return c.Issued().Add(c.Expires().Sub(c.Issued()) / 2)
}

// closeExpired closes channels whose peer's credential expired or whose peer was revoked.
func (n *Node) closeExpired(p *project, now time.Time) {
	for _, c := range n.channels.list() {
		peer, ok := c.Peer().(*trust.Peer)
		if !ok {
			continue
		}
		if exp := peer.Expires(); !exp.IsZero() && now.After(exp) {
			n.log.Info("closing channel: the peer's credential expired", "peer", peer.Identifier(), "expired", exp)
			c.Close()
		} else if n.isRevoked(identity.Identifier(peer.Identifier())) {
			c.Close()
		}
	}
}

// refreshCredential gets a fresh credential: from the authority itself on the hub, over the
// hub channel on a member. A member whose credential had expired registers its relays again:
// the hub refused them when the member reconnected without a valid credential.
func (n *Node) refreshCredential(ctx context.Context, p *project) error {
	old := p.cred.Load()
	var b *credential.Bundle
	var err error
	if p.hub {
		b, err = p.auth.Issue(ctx, n.self.history.Identifier())
		if err != nil && old != nil {
			n.log.Warn("the member store did not renew the hub's credential; the authority renews its own", "err", err)
			b, err = p.auth.RenewOwn(old.Credential)
			// The store may have used up ctx; saving is local and quick.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
		}
	} else {
		b, err = n.requestCredential(ctx, p)
	}
	if err != nil {
		return err
	}
	lapsed := old == nil || !n.cfg.Now().Before(old.Credential.Expires())
	if err := n.saveCredential(ctx, p, b); err != nil {
		return err
	}
	if s := p.session.Load(); lapsed && s != nil {
		s.ReregisterRelays(ctx)
	}
	return nil
}

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
