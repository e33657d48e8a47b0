package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/member"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/securechannel"
)

// credentialKeeper keeps the node's credential of its project fresh and its peers' in
// force: it renews the credential at half its lifetime (from the authority itself on a
// hub, over the session to the hub on a member) and at the hub's word, stores it and
// presents it on every open channel, checks a credential the authority sent, and closes
// channels whose peer's credential expired or whose peer was revoked. On a hub its loop
// also has the authority service read the revocations again. Its data: the project
// (membership), the node's channels, and the state database, where the credential is kept.
type credentialKeeper struct{ cfg credentialKeeperConfig }

// credentialKeeperConfig is what the credential keeper needs of the node.
type credentialKeeperConfig struct {
	Project  *membership
	Self     identity.Identifier
	Channels func() []*securechannel.Channel
	Settings interface {
		SetSetting(ctx context.Context, key, value string) error
	}
	Context context.Context // the node's life, for refreshes the hub asks for
	Logger  *slog.Logger
	Now     func() time.Time
}

// save stores a fresh credential and presents it on every open channel.
func (k *credentialKeeper) save(ctx context.Context, p *project, b *credential.Bundle) error {
	if err := k.cfg.Settings.SetSetting(ctx, settingCredential, hex.EncodeToString(b.Encode())); err != nil {
		return err
	}
	p.cred.Store(b)
	enc := b.Encode()
	for _, c := range k.cfg.Channels() {
		c.SendRefresh(enc)
	}
	return nil
}

// run refreshes the node's credential at half its lifetime, and closes channels
// whose peer's credential has expired or whose peer was revoked. A refresh runs on its own,
// one at a time: an authority slow to answer (its member store hanging) must not hold up
// closing the channels of expired peers.
func (k *credentialKeeper) run(ctx context.Context) {
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
		p := k.cfg.Project.Load()
		if p == nil {
			continue
		}
		now := k.cfg.Now()
		k.closeExpired(p, now)
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
					if err := k.refresh(ctx, p); err != nil {
						k.cfg.Logger.Warn("credential refresh failed", "err", err)
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
func (k *credentialKeeper) closeExpired(p *project, now time.Time) {
	for _, c := range k.cfg.Channels() {
		peer, ok := c.Peer().(*trust.Peer)
		if !ok {
			continue
		}
		if exp := peer.Expires(); !exp.IsZero() && now.After(exp) {
			k.cfg.Logger.Info("closing channel: the peer's credential expired", "peer", peer.Identifier(), "expired", exp)
			c.Close()
		} else if k.cfg.Project.isRevoked(identity.Identifier(peer.Identifier())) {
			c.Close()
		}
	}
}

// refresh gets a fresh credential: from the authority itself on the hub, over the
// hub channel on a member. A member whose credential had expired registers its relays again:
// the hub refused them when the member reconnected without a valid credential.
func (k *credentialKeeper) refresh(ctx context.Context, p *project) error {
	old := p.cred.Load()
	var b *credential.Bundle
	var err error
	if p.hub {
		b, err = p.auth.Issue(ctx, k.cfg.Self)
		if err != nil && old != nil {
			k.cfg.Logger.Warn("the member store did not renew the hub's credential; the authority renews its own", "err", err)
			b, err = p.auth.RenewOwn(old.Credential)
			// The store may have used up ctx; saving is local and quick.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
		}
	} else {
		b, err = k.request(ctx, p)
	}
	if err != nil {
		return err
	}
	lapsed := old == nil || !k.cfg.Now().Before(old.Credential.Expires())
	if err := k.save(ctx, p, b); err != nil {
		return err
	}
	if s := p.session.Load(); lapsed && s != nil {
		s.ReregisterRelays(ctx)
	}
	return nil
}

// refreshNow fetches a fresh credential at the hub's word, and presents it on every channel.
func (k *credentialKeeper) refreshNow(p *project) {
	ctx, cancel := context.WithTimeout(k.cfg.Context, 10*time.Second)
	defer cancel()
	if err := k.refresh(ctx, p); err != nil {
		k.cfg.Logger.Warn("credential refresh asked by the hub failed", "err", err)
		return
	}
	k.cfg.Logger.Info("credential refreshed at the hub's word: the member's attributes changed")
}

// check decodes a credential from the authority and checks it is this node's.
func (k *credentialKeeper) check(p *project, raw []byte) (*credential.Bundle, error) {
	b, err := credential.DecodeBundle(raw)
	if err != nil {
		return nil, fmt.Errorf("credential from the authority: %w", err)
	}
	trusted := func(id identity.Identifier) *identity.History {
		if id == p.authority.Identifier() {
			return p.authorityHistory()
		}
		return nil
	}
	opts := credential.Options{AdoptIssuer: true, RetiredKeyGrace: k.cfg.Project.retiredKeyGrace()} // from the hub itself
	if err := b.VerifyWith(trusted, k.cfg.Self, k.cfg.Now(), opts); err != nil {
		return nil, fmt.Errorf("credential from the authority: %w", err)
	}
	return b, nil
}

// request asks the hub for a fresh credential.
func (k *credentialKeeper) request(ctx context.Context, p *project) (*credential.Bundle, error) {
	s := p.session.Load()
	if s == nil {
		return nil, member.ErrNotConnected
	}
	raw, err := s.Credential(ctx)
	if err != nil {
		return nil, err
	}
	return k.check(p, raw)
}
