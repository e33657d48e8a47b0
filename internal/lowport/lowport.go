package lowport

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
)

// Listen calls listen with 127.0.0.1 and a random port from 20000 to 31999 until it finds a
// free one, and returns what listen made; any error but the port being taken fails t.
func Listen[L any](t testing.TB, listen func(addr string) (L, error)) L {
	t.Helper()
	for range 100 {
		l, err := listen("127.0.0.1:" + strconv.Itoa(20000+rand.IntN(12000)))
		if err == nil {
			return l
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
	}
	t.Fatal("lowport: no free port from 20000 to 31999")
	panic("unreachable")
}
