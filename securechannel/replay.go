package securechannel

import (
	"sync"

	"golang.zx2c4.com/wireguard/replay"
)

// windowSize is the width of the replay window that is guaranteed to a counter: wireguard-go's
// RFC 6479 filter is a ring of 128 blocks of 64 bits (8192 bits), one of which is always
// the block being filled, so a counter up to (128-1)*64 = 8128 behind the highest one
// accepted is still told apart. The replay package does not export it; TestReplayWindow
// pins it.
const windowSize = (128 - 1) * 64

// replayWindow remembers which recent counters were accepted: wireguard-go's replay.Filter,
// made safe for concurrent use. The zero value is empty and ready.
//
// It is consulted once, after a message authenticated, as wireguard-go does: a message that
// fails to open never reaches it, so a forgery changes nothing. There is no cheaper check
// before decrypting: it would spare the decryption only of replayed copies of authentic
// messages, while a forgery with a fresh counter costs the decryption anyway.
type replayWindow struct {
	mu sync.Mutex
	f  replay.Filter
}

// accept marks ctr as seen, sliding the window forward if ctr is the newest, and reports
// false if ctr was too old, already accepted or not below rejectAfterMessages.
func (w *replayWindow) accept(ctr uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.ValidateCounter(ctr, rejectAfterMessages)
}
