// Package sockio makes the data plane's socket calls without a goroutine per call and without
// allocating: a Writer writes vectors to a socket only as far as it takes them now (so the
// goroutine that produced a frame can write it itself and hand the rest to a writer goroutine
// only when the socket is full), and a Reader waits for a socket to be readable before it asks
// for a buffer (so an idle connection holds no buffer memory).
//
// Both work on the syscall.RawConn of a *net.TCPConn or *net.UnixConn; for any other
// connection NewWriter and NewReader return nil and the caller uses the net.Conn as usual.
//
// Queue is the one socket write queue of the tree (routing/tcp's connections, dataplane's
// portal sessions): buffers written in order by whichever producer holds the right to
// write, through a TryWriter (a Writer, or the transparent stack's connections) without
// waiting, and by a goroutine that waits only when the connection is full.
package sockio
