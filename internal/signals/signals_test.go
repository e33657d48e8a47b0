package signals

import "testing"

func TestClosed(t *testing.T) {
	c := make(chan struct{})
	if Closed(c) || Closed(nil) {
		t.Fatal("Closed of an open or nil channel = true, want false")
	}
	close(c)
	if !Closed(c) {
		t.Fatal("Closed of a closed channel = false, want true")
	}
}
