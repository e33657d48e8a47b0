package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/state"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/control/vault"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/securechannel"
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

// histories is what the node knows of rotated identities: the newest history of each
// peer and of the project's authority, as trust.Config's Known and Learn read and extend
// them. The peers' are remembered in memory (known) and stored in the state database, the
// authority's on the project and in the state's settings, so a restart accepts no retired
// key again.
type histories struct {
	cfg   historiesConfig
	known known
}

// historiesConfig is what histories needs of the node.
type historiesConfig struct {
	Project *membership
	Self    identity.Identifier // the node's own history changes only by its own rotation
	Store   interface {
		PutPeerHistory(ctx context.Context, rec state.PeerHistory) error
		PeerHistories(ctx context.Context, limit int) ([]state.PeerHistory, error)
		SetSetting(ctx context.Context, key, value string) error
	}
	Logger *slog.Logger
}

// get is trust.Config.Known: the newest history of id this node has seen.
func (hs *histories) get(id identity.Identifier) *identity.History {
	if p := hs.cfg.Project.Load(); p != nil && p.authority.Identifier() == id {
		return p.authorityHistory()
	}
	return hs.known.get(id)
}

// learn is trust.Config.Learn: a peer, or the authority, has a longer history than the
// one this node knew. The authority's is stored, so that the node keeps trusting the
// credentials the authority signs under its new key after a restart; the others are kept in
// memory.
func (hs *histories) learn(h *identity.History) {
	if h.Identifier() == hs.cfg.Self {
		return // the node's own history changes only by its own rotation
	}
	if p := hs.cfg.Project.Load(); p != nil && p.authority.Identifier() == h.Identifier() {
		hs.learnAuthority(p, h)
		return
	}
	if !hs.known.learn(h, hs.cfg.Logger) {
		return
	}
	hs.cfg.Logger.Info("a peer rotated its identity key", "peer", h.Identifier(), "changes", h.Len())
	// Stored, so that a restart does not make the node accept the peer's retired key again;
	// in the background, as the caller may hold a channel's lock. The store keeps the
	// longest history whatever the order of the writes.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rec := state.PeerHistory{Identifier: string(h.Identifier()), Changes: h.Len(), History: h.Encode()}
		if err := hs.cfg.Store.PutPeerHistory(ctx, rec); err != nil {
			hs.cfg.Logger.Warn("a peer's rotated identity is not stored", "peer", h.Identifier(), "err", err)
		}
	}()
}

// load reads the peers' rotated histories the node stored.
func (hs *histories) load(ctx context.Context) error {
	recs, err := hs.cfg.Store.PeerHistories(ctx, maxKnownHistories)
	if err != nil {
		return err
	}
	for _, r := range recs {
		h, err := identity.DecodeHistory(r.History)
		if err != nil || string(h.Identifier()) != r.Identifier {
			hs.cfg.Logger.Warn("a stored peer history does not decode; ignored", "peer", r.Identifier, "err", err)
			continue
		}
		hs.known.learn(h, hs.cfg.Logger)
	}
	return nil
}

// learnAuthority makes h the authority's history if it extends the one the node has.
func (hs *histories) learnAuthority(p *project, h *identity.History) {
	p.newestMu.Lock()
	defer p.newestMu.Unlock()
	cur := p.authorityHistory()
	if h.Len() <= cur.Len() || h.Extends(cur) != nil {
		return
	}
	p.newest.Store(h)
	hs.cfg.Logger.Info("the authority rotated its identity key", "authority", h.Identifier(), "changes", h.Len())
	// Stored in the background, as the caller may hold a channel's lock; each write stores
	// the newest history at its time, so the last one stores the newest of all.
	go func() {
		p.newestMu.Lock()
		defer p.newestMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.cfg.Store.SetSetting(ctx, settingAuthority, hex.EncodeToString(p.authorityHistory().Encode())); err != nil {
			hs.cfg.Logger.Warn("the authority's rotated identity is not stored", "err", err)
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
func (me *self) present(s trust.Self) trust.Self {
	k := me.keys()
	if s.History.Identifier() != k.history.Identifier() || s.History.Len() >= k.history.Len() {
		return s
	}
	pub := s.Attestation.PublicKey()
	me.mu.Lock()
	defer me.mu.Unlock()
	for _, r := range me.reattested {
		if r.History == k.history && string(r.Attestation.PublicKey()) == string(pub) {
			return r
		}
	}
	return s
}

// rotator replaces identity keys (rotateIdentity), and after a rotation of the node's own
// makes the new keys the node's: new channels use them, open ones re-handshake with their
// static key attested again, and a hub's authority signs under a new credential-signing
// key. Its data: the identities in the state database and their keys in the vault, the
// node's self, and the project.
type rotator struct {
	cfg rotatorConfig
	mu  sync.Mutex // one rotation at a time
}

// rotatorConfig is what the rotator needs of the node.
type rotatorConfig struct {
	Self     *self
	Project  *membership
	State    identityRecords
	Vault    keyMaker
	Open     func(state.Identity) (*self, error)         // an identity's keys from the vault
	Rekey    func(*project)                              // the listener's keys for new channels
	Refresh  func(ctx context.Context, p *project) error // the node's credential, re-issued
	Channels func() []*securechannel.Channel             // the node's open channels
	Logger   *slog.Logger
	Now      func() time.Time
}

// rotateIdentity replaces the primary key of the identity called name (the node's own if
// empty): a change signed by the old and the new key is appended to its history and stored,
// then the old private key is deleted from the vault. For the node's own identity it also
// attests a new Noise static key for the channels opened from now on, attests the static key
// of the open channels again (they keep running, and show the new history when they
// re-handshake, which they do now), and on a hub attests the credential-signing key again and
// re-issues its own credential, which carries the new history to every member.
func (r *rotator) rotateIdentity(ctx context.Context, name string) (state.Identity, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	me := r.cfg.Self
	// Once begun, a rotation runs to its end whatever the client does: a node that stored its
	// new key must also start using it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	own := name == "" || name == me.name
	if own {
		name = me.name
	}
	rec, err := r.cfg.State.Identity(ctx, name)
	if err != nil {
		return state.Identity{}, notFound(fmt.Errorf("identity rotate: %w; see: adjacent identity list", err))
	}
	old, err := r.cfg.Open(rec)
	if err != nil {
		return state.Identity{}, fmt.Errorf("identity rotate: %w", err)
	}
	oldKeys := old.keys()
	if own {
		oldKeys = me.keys()
	}
	now := r.cfg.Now()
	if now.Unix() < oldKeys.history.Changed().Unix() {
		return state.Identity{}, fmt.Errorf("identity rotate %s: the clock (%v) is before the last change (%v); fix the clock", name, now.UTC(), oldKeys.history.Changed().UTC())
	}
	if oldKeys.history.Len() >= identity.MaxChanges {
		return state.Identity{}, fmt.Errorf("identity rotate %s: the identity has rotated %d times, the most it can; create a new identity", name, identity.MaxChanges-1)
	}
	keyName := "rotated-" + strconv.FormatInt(now.UnixNano(), 36)
	next, err := r.cfg.Vault.GenerateEd25519(keyName)
	if err != nil {
		return state.Identity{}, fmt.Errorf("identity rotate %s: new key: %w", name, err)
	}
	fail := func(err error) (state.Identity, error) {
		r.cfg.Vault.Delete(keyName)
		return state.Identity{}, fmt.Errorf("identity rotate %s: %w", name, err)
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
		if static, err = r.cfg.Vault.GenerateX25519(staticName); err != nil {
			return fail(fmt.Errorf("new Noise static key: %w", err))
		}
		pub := static.Public()
		att, err := identity.Attest(next, h.Identifier(), identity.PurposeSecureChannel, pub[:], now, now.Add(staticKeyLifetime))
		if err != nil {
			r.cfg.Vault.Delete(staticName)
			return fail(err)
		}
		k.static, k.attestation = static, att
	}
	newRec := state.Identity{Name: rec.Name, Identifier: rec.Identifier, History: h.Encode(), VaultKey: keyName}
	if err := r.cfg.State.PutIdentity(ctx, newRec); err != nil {
		if static != nil {
			r.cfg.Vault.Delete(static.Name())
		}
		return fail(err)
	}
	// Stored: the old private key is of no more use and goes.
	if err := r.cfg.Vault.Delete(rec.VaultKey); err != nil {
		r.cfg.Logger.Warn("the retired identity key is still in the vault", "key", rec.VaultKey, "err", err)
	}
	r.cfg.Logger.Info("rotated identity key", "name", name, "identifier", h.Identifier(), "changes", h.Len())
	if own {
		if err := r.adoptKeys(ctx, oldKeys, k); err != nil {
			return state.Identity{}, fmt.Errorf("identity rotate %s: the rotation is stored, but %w", name, err)
		}
	}
	return newRec, nil
}

// adoptKeys makes k, the keys of the node's identity after a rotation, the node's own: new
// channels use them, open ones keep their static key attested again by the new key, and a
// hub's authority signs under the new key.
func (r *rotator) adoptKeys(ctx context.Context, old, k *selfKeys) error {
	me := r.cfg.Self
	now := r.cfg.Now()
	if err := r.cfg.State.SetSetting(ctx, settingStaticKey, k.static.Name()); err != nil {
		return err
	}
	if err := r.cfg.State.SetSetting(ctx, settingStaticAttestation, hex.EncodeToString(k.attestation.Encode())); err != nil {
		return err
	}
	// The static keys of the open channels (the one before this rotation, and those before
	// earlier ones), attested by the new primary key until they would have expired.
	me.mu.Lock()
	prev := append(me.reattested, old.trust())
	var again []trust.Self
	for _, s := range prev[max(0, len(prev)-maxReattested):] {
		expires := s.Attestation.Expires()
		if !expires.After(now) {
			continue // its channels have been refused by their peers already
		}
		a, err := identity.Attest(k.signer, k.history.Identifier(), identity.PurposeSecureChannel, s.Attestation.PublicKey(), now, expires)
		if err != nil {
			me.mu.Unlock()
			return fmt.Errorf("attest the open channels' static key again: %w", err)
		}
		again = append(again, trust.Self{History: k.history, Attestation: a})
	}
	me.reattested = again
	me.mu.Unlock()
	me.cur.Store(k)
	// The open channels hold the old static key in memory; the vault need not.
	r.cfg.Vault.Delete(old.static.Name())

	p := r.cfg.Project.Load()
	if p != nil && p.hub {
		if err := r.reattestSigningKey(ctx, p, k); err != nil {
			return err
		}
	}
	r.cfg.Rekey(p)
	if p != nil && p.hub {
		// The hub's fresh credential carries its new history to every member on its channel.
		if err := r.cfg.Refresh(ctx, p); err != nil {
			return fmt.Errorf("re-issue the hub's own credential: %w", err)
		}
	}
	for _, c := range r.cfg.Channels() {
		c.Rehandshake()
	}
	return nil
}

// reattestSigningKey gives the hub a new credential-signing key attested by its identity's
// current key (a thief of the retired identity key may hold the old signing key too), stores
// them and the authority's history, has the authority use them, and deletes the old signing
// key: credentials it signed stay valid for identity.RetiredKeyGrace at most.
func (r *rotator) reattestSigningKey(ctx context.Context, p *project, k *selfKeys) error {
	oldName, _, err := r.cfg.State.Setting(ctx, settingSigningKey)
	if err != nil {
		return err
	}
	now := r.cfg.Now()
	keyName := "credential-signing-" + strconv.FormatInt(now.UnixNano(), 36)
	key, err := r.cfg.Vault.GenerateEd25519(keyName)
	if err != nil {
		return fmt.Errorf("new credential-signing key: %w", err)
	}
	att, err := identity.Attest(k.signer, k.history.Identifier(), identity.PurposeCredentialSigning, key.Public(), now, now.Add(signingKeyLifetime))
	if err != nil {
		r.cfg.Vault.Delete(keyName)
		return fmt.Errorf("attest the new credential-signing key: %w", err)
	}
	for _, kv := range [][2]string{
		{settingSigningAttestation, hex.EncodeToString(att.Encode())},
		{settingSigningKey, keyName},
		{settingAuthority, hex.EncodeToString(k.history.Encode())},
	} {
		if err := r.cfg.State.SetSetting(ctx, kv[0], kv[1]); err != nil {
			return err
		}
	}
	p.auth.Reattest(k.history, key, att)
	p.newest.Store(k.history)
	if oldName != "" && oldName != keyName {
		r.cfg.Vault.Delete(oldName)
	}
	return nil
}
