package identity

import "errors"

// Sentinel errors; callers test them with errors.Is. Returned errors wrap them with the
// operation and the detail that failed.
var (
	// ErrMalformed: an encoding or a value is structurally invalid (bad length, count,
	// timestamp or field combination).
	ErrMalformed = errors.New("malformed")
	// ErrVersion: an encoding carries a version this package does not know.
	ErrVersion = errors.New("unsupported version")
	// ErrBadIdentifier: a string is not an identifier ("I" and 64 lowercase hex digits).
	ErrBadIdentifier = errors.New("not an identifier")
	// ErrBadSignature: a signature does not verify under the key that should have made it.
	ErrBadSignature = errors.New("bad signature")
	// ErrBrokenChain: a change does not follow from the one before it (wrong previous
	// hash, reused key, or time going backwards).
	ErrBrokenChain = errors.New("broken change chain")
	// ErrTooManyChanges: a history would exceed MaxChanges.
	ErrTooManyChanges = errors.New("too many changes")
	// ErrWrongKey: a signer's public key is not the one the operation needs.
	ErrWrongKey = errors.New("wrong key")
	// ErrPurpose: a purpose byte is unknown or a key does not fit its purpose.
	ErrPurpose = errors.New("bad purpose")
	// ErrWrongSubject: an attestation is about another identity than the one checking it.
	ErrWrongSubject = errors.New("wrong subject")
	// ErrNotYetValid: an attestation is created further in the future than the clock
	// skew allows.
	ErrNotYetValid = errors.New("not yet valid")
	// ErrExpired: an attestation's expiry has passed.
	ErrExpired = errors.New("expired")
	// ErrRetiredKey: an attestation was made by a primary key that was rotated away more
	// than RetiredKeyGrace ago.
	ErrRetiredKey = errors.New("retired key")
	// ErrNotExtension: a history does not extend the one known for its identifier: it is
	// shorter or it forks.
	ErrNotExtension = errors.New("does not extend the known history")
)
