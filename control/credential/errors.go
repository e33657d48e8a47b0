package credential

import "errors"

// Sentinel errors; callers test them with errors.Is to report why a credential was refused.
// Returned errors wrap them with one line that says what failed and why.
var (
	// ErrMalformed: an encoding or a value is structurally invalid.
	ErrMalformed = errors.New("malformed credential")
	// ErrVersion: an encoding carries a version this package does not know.
	ErrVersion = errors.New("unsupported credential version")
	// ErrUntrustedIssuer: the issuer is not an authority the verifier trusts.
	ErrUntrustedIssuer = errors.New("credential issuer not trusted")
	// ErrSigningKey: the attestation of the key that signed the credential is not valid: not
	// made by the issuer, not for credential signing, expired or badly signed. The error also
	// wraps the identity package's reason.
	ErrSigningKey = errors.New("credential signing key not valid")
	// ErrBadSignature: the credential's signature is not by the attested signing key.
	ErrBadSignature = errors.New("credential signature not valid")
	// ErrWrongSubject: the credential is about another identity than the one presenting it.
	ErrWrongSubject = errors.New("credential for another identity")
	// ErrExpired: the credential's expiry has passed.
	ErrExpired = errors.New("credential expired")
	// ErrNotYetValid: the credential was issued further in the future than MaxClockSkew.
	ErrNotYetValid = errors.New("credential not yet valid")
)

// verifyError is a verification failure: a one-line message that already says what and why,
// matching its sentinel (and, for ErrSigningKey, the identity package's error) with errors.Is.
type verifyError struct {
	msg  string
	errs []error
}

func (e *verifyError) Error() string   { return e.msg }
func (e *verifyError) Unwrap() []error { return e.errs }

func verifyErr(msg string, errs ...error) error { return &verifyError{msg: msg, errs: errs} }
