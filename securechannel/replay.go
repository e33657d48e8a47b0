package securechannel

import "sync"

// The replay window is RFC 6479's bitmap: a ring of 128 blocks of 64 bits (8192 bits). One
// block is always the one being filled, so the window guaranteed to a counter is the other
// 127 blocks: a counter up to windowSize behind the highest one accepted is still told apart.
const (
	blockBitLog = 6
	blockBits   = 1 << blockBitLog
	ringBlocks  = 128
	blockMask   = ringBlocks - 1
	bitMask     = blockBits - 1
	windowSize  = (ringBlocks - 1) * blockBits // 8128
)

// replayWindow remembers which recent counters were accepted. The zero value is empty and
// ready; it is safe for concurrent use.
type replayWindow struct {
	mu   sync.Mutex
	last uint64 // highest counter accepted
	ring [ringBlocks]uint64
}

// check is the cheap pre-filter run before decrypting: it reports false if ctr is too old or
// already accepted. It changes nothing, so a forged message that passes it costs no state.
func (w *replayWindow) check(ctr uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ctr > w.last {
		return true
	}
	if w.last-ctr > windowSize {
		return false
	}
	return w.ring[(ctr>>blockBitLog)&blockMask]&(1<<(ctr&bitMask)) == 0
}

// accept marks ctr as seen, sliding the window forward if ctr is the newest. Call it only
// after the message authenticated. It reports false if ctr was too old or already accepted,
// which after a passing check means a duplicate raced this one and won.
func (w *replayWindow) accept(ctr uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	block := ctr >> blockBitLog
	if ctr > w.last {
		// Clear the blocks the window slides over; they still hold counters a full ring older.
		cur := w.last >> blockBitLog
		diff := min(block-cur, ringBlocks)
		for i := cur + 1; i <= cur+diff; i++ {
			w.ring[i&blockMask] = 0
		}
		w.last = ctr
	} else if w.last-ctr > windowSize {
		return false
	}
	i, bit := block&blockMask, uint64(1)<<(ctr&bitMask)
	if w.ring[i]&bit != 0 {
		return false
	}
	w.ring[i] |= bit
	return true
}
