package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/state"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/control/vault"
	"github.com/adjacentnet/adjacent/internal/ratelog"
)

// signingKeyLifetime is how long an attestation of the hub's credential-signing key holds.
const signingKeyLifetime = 10 * 365 * 24 * time.Hour

// maxKnownHistories caps the rotated peer histories a node remembers. Only peers with a valid
// credential of the project are remembered, so the project's members bound it in practice;
// past the cap, further rotations are not remembered (and a peer's older history would be
// accepted again), which is logged.
const maxKnownHistories = 4096

// known is what the node remembers of its peers' rotated identities: the longest history of
// each, so that a shorter or forked one is refused. Histories that never rotated need no
// entry: every history of the same identifier extends them.
type known struct {
	mu   sync.Mutex
	m    map[identity.Identifier]*identity.History
	full *ratelog.Logger
}

// maxReattested bounds the older static keys a node attests again when it rotates: those of
// channels opened before the last few rotations.
const maxReattested = 8

func (k *known) get(id identity.Identifier) *identity.History {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[id]
}

// learn keeps h if it is longer than what is known of its identity, and reports whether it
// did. Callers have checked that h extends what is known.
func (k *known) learn(h *identity.History, log *slog.Logger) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := h.Identifier()
	if old := k.m[id]; old != nil && old.Len() >= h.Len() {
		return false
	}
	if k.m == nil {
		k.m = make(map[identity.Identifier]*identity.History)
	}
	if _, ok := k.m[id]; !ok && len(k.m) >= maxKnownHistories {
		if k.full == nil {
			k.full = ratelog.New(log, slog.LevelWarn, "a peer's rotated identity is not remembered: too many are", time.Minute)
		}
		k.full.Note(slog.String("peer", string(id)), slog.Int("limit", maxKnownHistories))
		return false
	}
	k.m[id] = h
	return true
}

// knownHistory is trust.Config.Known: the newest history of id this node has seen.
func (n *Node) knownHistory(id identity.Identifier) *identity.History {
	if p := n.project.Load(); p != nil && p.authority.Identifier() == id {
		return p.authorityHistory()
	}
	return n.known.get(id)
}

// learnHistory is trust.Config.Learn: a peer, or the authority, has a longer history than the
// one this node knew. The authority's is stored, so that the node keeps trusting the
// credentials the authority signs under its new key after a restart; the others are kept in
// memory.
func (n *Node) learnHistory(h *identity.History) {
	if h.Identifier() == n.self.history.Identifier() {
		return // the node's own history changes only by its own rotation
	}
	if p := n.project.Load(); p != nil && p.authority.Identifier() == h.Identifier() {
		n.learnAuthority(p, h)
		return
	}
	if !n.known.learn(h, n.log) {
		return
	}
	n.log.Info("a peer rotated its identity key", "peer", h.Identifier(), "changes", h.Len())
	// Stored, so that a restart does not make the node accept the peer's retired key again;
	// in the background, as the caller may hold a channel's lock. The store keeps the
	// longest history whatever the order of the writes.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rec := state.PeerHistory{Identifier: string(h.Identifier()), Changes: h.Len(), History: h.Encode()}
		if err := n.state.PutPeerHistory(ctx, rec); err != nil {
			n.log.Warn("a peer's rotated identity is not stored", "peer", h.Identifier(), "err", err)
		}
	}()
}

// loadKnown reads the peers' rotated histories the node stored.
func (n *Node) loadKnown(ctx context.Context) error {
	recs, err := n.state.PeerHistories(ctx, maxKnownHistories)
	if err != nil {
		return err
	}
	for _, r := range recs {
		h, err := identity.DecodeHistory(r.History)
		if err != nil || string(h.Identifier()) != r.Identifier {
			n.log.Warn("a stored peer history does not decode; ignored", "peer", r.Identifier, "err", err)
			continue
		}
		n.known.learn(h, n.log)
	}
	return nil
}

// learnAuthority makes h the authority's history if it extends the one the node has.
func (n *Node) learnAuthority(p *project, h *identity.History) {
	p.newestMu.Lock()
	defer p.newestMu.Unlock()
	cur := p.authorityHistory()
	if h.Len() <= cur.Len() || h.Extends(cur) != nil {
		return
	}
	p.newest.Store(h)
	n.log.Info("the authority rotated its identity key", "authority", h.Identifier(), "changes", h.Len())
	// Stored in the background, as the caller may hold a channel's lock; each write stores
	// the newest history at its time, so the last one stores the newest of all.
	go func() {
		p.newestMu.Lock()
		defer p.newestMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.state.SetSetting(ctx, settingAuthority, hex.EncodeToString(p.authorityHistory().Encode())); err != nil {
			n.log.Warn("the authority's rotated identity is not stored", "err", err)
		}
	}()
}

// authorityHistory is the newest history of the project's authority the node knows.
func (p *project) authorityHistory() *identity.History {
	if h := p.newest.Load(); h != nil {
		return h
	}
	return p.authority
}

// present is trust.Config.Present: channels opened before a rotation present the node's
// current history with their static key attested again by the current primary key.
func (n *Node) present(s trust.Self) trust.Self {
	k := n.self.keys()
	if s.History.Identifier() != k.history.Identifier() || s.History.Len() >= k.history.Len() {
		return s
	}
	pub := s.Attestation.PublicKey()
	n.self.mu.Lock()
	defer n.self.mu.Unlock()
	for _, r := range n.self.reattested {
		if r.History == k.history && string(r.Attestation.PublicKey()) == string(pub) {
			return r
		}
	}
	return s
}

// rotateIdentity replaces the primary key of the identity called name (the node's own if
// empty): a change signed by the old and the new key is appended to its history and stored,
// then the old private key is deleted from the vault. For the node's own identity it also
// attests a new Noise static key for the channels opened from now on, attests the static key
// of the open channels again (they keep running, and show the new history when they
// re-handshake, which they do now), and on a hub attests the credential-signing key again and
// re-issues its own credential, which carries the new history to every member.
func (n *Node) rotateIdentity(ctx context.Context, name string) (api.Identity, error) {
	n.rotateMu.Lock()
	defer n.rotateMu.Unlock()
	// Once begun, a rotation runs to its end whatever the client does: a node that stored its
	// new key must also start using it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	own := name == "" || name == n.self.name
	if own {
		name = n.self.name
	}
	rec, err := n.state.Identity(ctx, name)
	if err != nil {
		return api.Identity{}, notFound(fmt.Errorf("identity rotate: %w; see: adjacent identity list", err))
	}
	old, err := n.openIdentity(rec)
	if err != nil {
		return api.Identity{}, fmt.Errorf("identity rotate: %w", err)
	}
	oldKeys := old.keys()
	if own {
		oldKeys = n.self.keys()
	}
	now := n.cfg.Now()
	if now.Unix() < oldKeys.history.Changed().Unix() {
		return api.Identity{}, fmt.Errorf("identity rotate %s: the clock (%v) is before the last change (%v); fix the clock", name, now.UTC(), oldKeys.history.Changed().UTC())
	}
	if oldKeys.history.Len() >= identity.MaxChanges {
		return api.Identity{}, fmt.Errorf("identity rotate %s: the identity has rotated %d times, the most it can; create a new identity", name, identity.MaxChanges-1)
	}
	keyName := "rotated-" + strconv.FormatInt(now.UnixNano(), 36)
	next, err := n.vault.GenerateEd25519(keyName)
	if err != nil {
		return api.Identity{}, fmt.Errorf("identity rotate %s: new key: %w", name, err)
	}
	fail := func(err error) (api.Identity, error) {
		n.vault.Delete(keyName)
		return api.Identity{}, fmt.Errorf("identity rotate %s: %w", name, err)
	}
	h := oldKeys.history.Clone()
	if err := h.Rotate(oldKeys.signer, next, now); err != nil {
		return fail(err)
	}
	k := &selfKeys{history: h, signer: next}
	var static *vault.X25519Key
	if own {
		// The new Noise static key and its attestation, before anything is stored: a crash
		// before PutIdentity leaves the old identity whole, one after it a node that attests
		// a static key again at start (ensureStaticKey).
		staticName := "noise-" + strconv.FormatInt(now.UnixNano(), 36)
		if static, err = n.vault.GenerateX25519(staticName); err != nil {
			return fail(fmt.Errorf("new Noise static key: %w", err))
		}
		pub := static.Public()
		att, err := identity.Attest(next, h.Identifier(), identity.PurposeSecureChannel, pub[:], now, now.Add(staticKeyLifetime))
		if err != nil {
			n.vault.Delete(staticName)
			return fail(err)
		}
		k.static, k.attestation = static, att
	}
	newRec := state.Identity{Name: rec.Name, Identifier: rec.Identifier, History: h.Encode(), VaultKey: keyName}
	if err := n.state.PutIdentity(ctx, newRec); err != nil {
		if static != nil {
			n.vault.Delete(static.Name())
		}
		return fail(err)
	}
	// Stored: the old private key is of no more use and goes.
	if err := n.vault.Delete(rec.VaultKey); err != nil {
		n.log.Warn("the retired identity key is still in the vault", "key", rec.VaultKey, "err", err)
	}
	n.log.Info("rotated identity key", "name", name, "identifier", h.Identifier(), "changes", h.Len())
	if own {
		if err := n.adoptKeys(ctx, oldKeys, k); err != nil {
			return api.Identity{}, fmt.Errorf("identity rotate %s: the rotation is stored, but %w", name, err)
		}
	}
	return n.identityInfo(newRec, false), nil
}

// adoptKeys makes k, the keys of the node's identity after a rotation, the node's own: new
// channels use them, open ones keep their static key attested again by the new key, and a
// hub's authority signs under the new key.
func (n *Node) adoptKeys(ctx context.Context, old, k *selfKeys) error {
	now := n.cfg.Now()
	if err := n.state.SetSetting(ctx, settingStaticKey, k.static.Name()); err != nil {
		return err
	}
	if err := n.state.SetSetting(ctx, settingStaticAttestation, hex.EncodeToString(k.attestation.Encode())); err != nil {
		return err
	}
	// The static keys of the open channels (the one before this rotation, and those before
	// earlier ones), attested by the new primary key until they would have expired.
	n.self.mu.Lock()
	prev := append(n.self.reattested, old.trust())
	var again []trust.Self
	for _, r := range prev[max(0, len(prev)-maxReattested):] {
		expires := r.Attestation.Expires()
		if !expires.After(now) {
			continue // its channels have been refused by their peers already
		}
		a, err := identity.Attest(k.signer, k.history.Identifier(), identity.PurposeSecureChannel, r.Attestation.PublicKey(), now, expires)
		if err != nil {
			n.self.mu.Unlock()
			return fmt.Errorf("attest the open channels' static key again: %w", err)
		}
		again = append(again, trust.Self{History: k.history, Attestation: a})
	}
	n.self.reattested = again
	n.self.mu.Unlock()
	n.self.cur.Store(k)
	// The open channels hold the old static key in memory; the vault need not.
	n.vault.Delete(old.static.Name())

	p := n.project.Load()
	if p != nil && p.hub {
		if err := n.reattestSigningKey(ctx, p, k); err != nil {
			return err
		}
	}
	n.listenerMu.Lock()
	if n.listener != nil {
		cfg := n.channelConfig(nil, p != nil && !p.hub)
		n.listener.SetKeys(cfg.Static, cfg.Auth)
	}
	n.listenerMu.Unlock()
	if p != nil && p.hub {
		// The hub's fresh credential carries its new history to every member on its channel.
		if err := n.credentials.refresh(ctx, p); err != nil {
			return fmt.Errorf("re-issue the hub's own credential: %w", err)
		}
	}
	for _, c := range n.channels.list() {
		c.Rehandshake()
	}
	return nil
}

// reattestSigningKey gives the hub a new credential-signing key attested by its identity's
// current key (a thief of the retired identity key may hold the old signing key too), stores
// them and the authority's history, has the authority use them, and deletes the old signing
// key: credentials it signed stay valid for identity.RetiredKeyGrace at most.
func (n *Node) reattestSigningKey(ctx context.Context, p *project, k *selfKeys) error {
	oldName, _, err := n.state.Setting(ctx, settingSigningKey)
	if err != nil {
		return err
	}
	now := n.cfg.Now()
	keyName := "credential-signing-" + strconv.FormatInt(now.UnixNano(), 36)
	key, err := n.vault.GenerateEd25519(keyName)
	if err != nil {
		return fmt.Errorf("new credential-signing key: %w", err)
	}
	att, err := identity.Attest(k.signer, k.history.Identifier(), identity.PurposeCredentialSigning, key.Public(), now, now.Add(signingKeyLifetime))
	if err != nil {
		n.vault.Delete(keyName)
		return fmt.Errorf("attest the new credential-signing key: %w", err)
	}
	for _, kv := range [][2]string{
		{settingSigningAttestation, hex.EncodeToString(att.Encode())},
		{settingSigningKey, keyName},
		{settingAuthority, hex.EncodeToString(k.history.Encode())},
	} {
		if err := n.state.SetSetting(ctx, kv[0], kv[1]); err != nil {
			return err
		}
	}
	p.auth.Reattest(k.history, key, att)
	p.newest.Store(k.history)
	if oldName != "" && oldName != keyName {
		n.vault.Delete(oldName)
	}
	return nil
}
