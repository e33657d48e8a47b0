package securechannel

import (
	"errors"
	"fmt"
)

// Transport errors. Callers test for them with errors.Is.
var (
	errShort       = errors.New("message shorter than counter and tag")
	errReplayed    = errors.New("counter already seen or too old")
	errDecrypt     = errors.New("message failed authentication")
	errRejectLimit = errors.New("counter limit reached; the channel must re-handshake")
	errEpochAhead  = errors.New("counter too many key epochs ahead")
	errBuffer      = errors.New("buffer lacks room for the counter or the tag")
	errClosed      = errors.New("securechannel: the channel is closed")
	errEvicted     = errors.New("securechannel: the listener has too many handshakes in progress from this origin; try again")

	errStrangerEvicted = errors.New("securechannel: the listener ended this channel of a non-member for a newer one, its origin holding the most such channels; try again")
)

// ErrStranger is why a stranger's channel closed (see Admitter): its peer did not become a
// member within StrangerTimeout.
var ErrStranger = errors.New("the peer did not become a member in time")

// The per-message failures are wrapped once here, so that dropping forged or replayed
// messages allocates nothing.
var (
	errOpenShort    = fmt.Errorf("securechannel: open: %w", errShort)
	errOpenReplayed = fmt.Errorf("securechannel: open: %w", errReplayed)
	errOpenDecrypt  = fmt.Errorf("securechannel: open: %w", errDecrypt)
	errOpenLimit    = fmt.Errorf("securechannel: open: %w", errRejectLimit)
	errOpenAhead    = fmt.Errorf("securechannel: open: %w", errEpochAhead)
	errSealLimit    = fmt.Errorf("securechannel: seal: %w", errRejectLimit)
	errSealBuffer   = fmt.Errorf("securechannel: seal: %w", errBuffer)
)
