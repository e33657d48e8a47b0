package connprobe

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// listen answers each connection with handle.
func listen(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

// recordingConn counts the writes and closes the probe makes.
type recordingConn struct {
	net.Conn
	writes, closes int
}

func (c *recordingConn) Write(p []byte) (int, error) { c.writes++; return c.Conn.Write(p) }
func (c *recordingConn) Close() error                { c.closes++; return c.Conn.Close() }

// The request goes in one write, the whole response is read, and the connection is handed
// back open: the close is the caller's, after the clock stopped.
func TestFirstRoundTripOneWriteAndLeavesCloseToCaller(t *testing.T) {
	addr := listen(t, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 73)
		if _, err := io.ReadFull(c, buf); err == nil {
			c.Write(buf[9:])
			io.Copy(io.Discard, c) // hold the connection until the client closes it
		}
	})
	var rc *recordingConn
	dial := func() (net.Conn, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		rc = &recordingConn{Conn: c}
		return rc, nil
	}
	req := append(bytes.Repeat([]byte{'h'}, 9), bytes.Repeat([]byte{'x'}, 64)...)
	resp := make([]byte, 64)
	d, c, err := FirstRoundTrip(dial, req, resp)
	if err != nil {
		t.Fatal(err)
	}
	if d <= 0 || !bytes.Equal(resp, req[9:]) {
		t.Errorf("FirstRoundTrip = %v, response %q", d, resp)
	}
	if rc.writes != 1 || rc.closes != 0 || c != net.Conn(rc) {
		t.Errorf("writes %d, closes %d, same conn %v; want one write, no close, the connection back", rc.writes, rc.closes, c == net.Conn(rc))
	}
	c.Close()
}

func TestFirstRoundTripShortResponseClosesAndFails(t *testing.T) {
	addr := listen(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, 4)) // all of it, so the close is a FIN, not a reset
		c.Write([]byte("short"))
		c.Close()
	})
	var rc *recordingConn
	_, c, err := FirstRoundTrip(func() (net.Conn, error) {
		c, err := net.Dial("tcp", addr)
		rc = &recordingConn{Conn: c}
		return rc, err
	}, []byte("ping"), make([]byte, 64))
	if !errors.Is(err, io.ErrUnexpectedEOF) || c != nil || rc.closes != 1 {
		t.Errorf("FirstRoundTrip against a short answer = %v, %v, %d closes; want ErrUnexpectedEOF, nil, 1", c, err, rc.closes)
	}
}
