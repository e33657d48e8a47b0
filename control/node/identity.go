package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/state"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/control/vault"
)

// Settings that name the node's identity and its current Noise static key.
const (
	settingIdentity          = "identity"
	settingStaticKey         = "static_key"
	settingStaticAttestation = "static_attestation"
	defaultIdentity          = "default"
)

// staticKeyLifetime is how long an attestation of the Noise static key is valid; the node
// moves to a fresh key once less than a quarter of it is left.
const staticKeyLifetime = 30 * 24 * time.Hour

// self is the node's own identity and the Noise static key it uses in handshakes.
//
// history is the identity's history when the node started, for its identifier, which a
// rotation keeps. The keys (the current history, its primary key and the attested Noise
// static key) change when the identity rotates; keys() has them.
type self struct {
	name    string
	history *identity.History
	cur     atomic.Pointer[selfKeys]

	// reattested are the static keys of channels opened before a rotation, attested again
	// by the current primary key: what those channels present when they re-handshake. At
	// most maxReattested; mu guards it.
	mu         sync.Mutex
	reattested []trust.Self
}

// selfKeys are the node's current identity keys, replaced together by a rotation.
type selfKeys struct {
	history     *identity.History
	signer      *vault.Ed25519Key
	static      *vault.X25519Key
	attestation *identity.Attestation
}

func (s *self) keys() *selfKeys { return s.cur.Load() }

func (s *self) trust() trust.Self { return s.keys().trust() }

func (k *selfKeys) trust() trust.Self {
	return trust.Self{History: k.history, Attestation: k.attestation}
}

// identityStore is the home's identities: their records and histories in the state
// database, their primary keys and Noise static keys in the vault. It loads the node's own
// identity at start (loadSelf), creates, lists and describes identities, and opens one's
// keys for a rotation.
type identityStore struct {
	state interface {
		identityRecords
		Identities(ctx context.Context) ([]state.Identity, error)
	}
	vault interface {
		keyMaker
		Ed25519(name string) (*vault.Ed25519Key, error)
		X25519(name string) (*vault.X25519Key, error)
	}
	log  *slog.Logger
	now  func() time.Time
	self string // the node's own identity's name, once loadSelf ran
}

// identityRecords is the part of the state database that holds the identities and the
// settings naming the node's current keys.
type identityRecords interface {
	Identity(ctx context.Context, name string) (state.Identity, error)
	PutIdentity(ctx context.Context, rec state.Identity) error
	Setting(ctx context.Context, key string) (string, bool, error)
	SetSetting(ctx context.Context, key, value string) error
}

// keyMaker is the part of the vault that makes and deletes keys.
type keyMaker interface {
	GenerateEd25519(name string) (*vault.Ed25519Key, error)
	GenerateX25519(name string) (*vault.X25519Key, error)
	Delete(name string) error
}

// loadSelf loads the node's identity, creating the default one on first start, and makes
// sure its Noise static key is attested and not close to expiry.
func (ids *identityStore) loadSelf(ctx context.Context, want string) (*self, error) {
	name := want
	if name == "" {
		stored, ok, err := ids.state.Setting(ctx, settingIdentity)
		if err != nil {
			return nil, err
		}
		name = defaultIdentity
		if ok {
			name = stored
		}
	}
	rec, err := ids.state.Identity(ctx, name)
	if errors.Is(err, state.ErrNotFound) {
		if want != "" && want != defaultIdentity {
			return nil, fmt.Errorf("node: no identity %q in this home; create it with: adjacent identity create %s", want, want)
		}
		rec, err = ids.create(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	s, err := ids.open(rec)
	if err != nil {
		return nil, err
	}
	if err := ids.state.SetSetting(ctx, settingIdentity, name); err != nil {
		return nil, err
	}
	if err := ids.ensureStaticKey(ctx, s); err != nil {
		return nil, err
	}
	ids.self = name
	return s, nil
}

func (ids *identityStore) open(rec state.Identity) (*self, error) {
	h, err := identity.DecodeHistory(rec.History)
	if err != nil {
		return nil, fmt.Errorf("node: identity %s: %w", rec.Name, err)
	}
	key, err := ids.vault.Ed25519(rec.VaultKey)
	if err != nil {
		return nil, fmt.Errorf("node: identity %s: %w", rec.Name, err)
	}
	if !key.Public().Equal(h.PrimaryKey()) {
		return nil, fmt.Errorf("node: identity %s: the vault key %s is not the identity's primary key", rec.Name, rec.VaultKey)
	}
	s := &self{name: rec.Name, history: h}
	s.cur.Store(&selfKeys{history: h, signer: key})
	return s, nil
}

// createIdentity makes a new identity called name, its key in the vault.
func (ids *identityStore) create(ctx context.Context, name string) (state.Identity, error) {
	keyName := "identity-" + name
	if !vault.ValidName(keyName) {
		return state.Identity{}, fmt.Errorf("identity name %q: use lower-case letters, digits, '.', '_' and '-', at most 54 characters", name)
	}
	if _, err := ids.state.Identity(ctx, name); err == nil {
		return state.Identity{}, fmt.Errorf("identity %q already exists; see it with: adjacent identity show %s", name, name)
	}
	key, err := ids.vault.GenerateEd25519(keyName)
	if err != nil {
		return state.Identity{}, fmt.Errorf("node: create identity %s: %w", name, err)
	}
	h, err := identity.New(key, ids.now())
	if err != nil {
		return state.Identity{}, err
	}
	rec := state.Identity{Name: name, Identifier: string(h.Identifier()), History: h.Encode(), VaultKey: keyName}
	if err := ids.state.PutIdentity(ctx, rec); err != nil {
		return state.Identity{}, err
	}
	ids.log.Info("created identity", "name", name, "identifier", h.Identifier())
	return rec, nil
}

// ensureStaticKey loads the attested Noise static key, or makes and attests a new one when
// there is none, it belongs to another identity, or its attestation is near expiry.
func (ids *identityStore) ensureStaticKey(ctx context.Context, s *self) error {
	now := ids.now()
	k := s.keys()
	keyName, _, err := ids.state.Setting(ctx, settingStaticKey)
	if err != nil {
		return err
	}
	attHex, _, err := ids.state.Setting(ctx, settingStaticAttestation)
	if err != nil {
		return err
	}
	if keyName != "" && attHex != "" {
		key, kerr := ids.vault.X25519(keyName)
		raw, herr := hex.DecodeString(attHex)
		if kerr == nil && herr == nil {
			att, err := identity.DecodeAttestation(raw)
			pub := key.Public()
			if err == nil && att.VerifyCurrent(k.history, now) == nil && string(att.PublicKey()) == string(pub[:]) &&
				att.Expires().Sub(now) > staticKeyLifetime/4 {
				k.static, k.attestation = key, att
				return nil
			}
		}
	}
	newName := "noise-" + strconv.FormatInt(now.UnixNano(), 36)
	key, err := ids.vault.GenerateX25519(newName)
	if err != nil {
		return fmt.Errorf("node: new Noise static key: %w", err)
	}
	pub := key.Public()
	att, err := identity.Attest(k.signer, k.history.Identifier(), identity.PurposeSecureChannel, pub[:], now, now.Add(staticKeyLifetime))
	if err != nil {
		return fmt.Errorf("node: attest Noise static key: %w", err)
	}
	if err := ids.state.SetSetting(ctx, settingStaticKey, newName); err != nil {
		return err
	}
	if err := ids.state.SetSetting(ctx, settingStaticAttestation, hex.EncodeToString(att.Encode())); err != nil {
		return err
	}
	if keyName != "" && keyName != newName {
		ids.vault.Delete(keyName) // the old key stays only as long as channels that use it live in memory
	}
	k.static, k.attestation = key, att
	ids.log.Info("new Noise static key attested", "identifier", k.history.Identifier(), "expires", att.Expires())
	return nil
}
