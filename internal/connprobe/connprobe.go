package connprobe

import (
	"fmt"
	"io"
	"net"
	"time"
)

// FirstRoundTrip dials, writes request in one write and reads exactly len(response) bytes
// into response, and returns the time that took (see the package comment) with the open
// connection, which the caller closes once it has stopped its own clock. On error the
// connection, if any, is closed and nil.
func FirstRoundTrip(dial func() (net.Conn, error), request, response []byte) (time.Duration, net.Conn, error) {
	start := time.Now()
	c, err := dial()
	if err != nil {
		return 0, nil, fmt.Errorf("connect: %w", err)
	}
	if _, err := c.Write(request); err != nil {
		c.Close()
		return 0, nil, fmt.Errorf("first request: %w", err)
	}
	if _, err := io.ReadFull(c, response); err != nil {
		c.Close()
		return 0, nil, fmt.Errorf("first response: %w", err)
	}
	return time.Since(start), c, nil
}
