package stack

import "time"

// SetTimeWait sets the TIME_WAIT of the stacks made after it.
func SetTimeWait(d time.Duration) { timeWaitTimeout = d }

// Reopened is how many TIME_WAIT pairs a new SYN ended.
func (s *Stack) Reopened() int64 { return s.reopened.Load() }
