package signals

// Closed reports, without blocking, whether c has been closed. A nil c never is.
func Closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
