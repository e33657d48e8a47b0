package tcp

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// TestHeartbeatBesideSenders: the writer goroutine's heartbeat tick never writes, nor gives
// up the right to write, while a sender holds it. It used to: a tick after traffic went back
// to writing the queue without holding the right, and cleared it, so a second sender could
// write beside the first and a frame's rest could land after another frame on the stream.
// Several senders keep a socket full under a heartbeat every millisecond; every frame must
// arrive, whole and in each sender's order, on one connection.
func TestHeartbeatBesideSenders(t *testing.T) {
	const senders, frames, size = 4, 1500, 24 << 10
	cfg := Config{HeartbeatInterval: time.Millisecond}
	server, client := newNode(t, cfg), newNode(t, cfg)
	var mu sync.Mutex
	next := make([]uint32, senders)
	errs := make(chan error, 1)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	arrived := make(chan struct{}, senders*frames)
	slots := make(chan struct{}, 256) // frames in flight: 6 MiB, under MaxQueue
	server.r.Register("sink", routing.WorkerFunc(func(m *routing.Message) {
		m.Local.Link.Authenticated()
		defer m.Release()
		p := m.Payload()
		if len(p) != size {
			return
		}
		from, seq := binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
		mu.Lock()
		if from >= senders || seq != next[from] {
			fail(fmt.Errorf("sender %d's frame %d arrived as number %d", from, seq, next[min(from, senders-1)]))
		} else {
			next[from]++
		}
		mu.Unlock()
		if seq%64 == 0 {
			time.Sleep(time.Millisecond) // let the sender's socket fill
		}
		<-slots
		arrived <- struct{}{}
	}), routing.FlowTransports)
	addr := server.listen(t)
	c, err := client.t.Connect(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	to := routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("sink"))
	sendTo(client, to, "x", []byte("lift the pre-authentication cap"))
	var wg sync.WaitGroup
	for s := range uint32(senders) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, size)
			for i := range uint32(frames) {
				binary.BigEndian.PutUint32(payload, s)
				binary.BigEndian.PutUint32(payload[4:], i)
				slots <- struct{}{}
				sendTo(client, to, "x", payload)
				if i%16 == 0 {
					time.Sleep(50 * time.Microsecond) // ticks between bursts
				}
			}
		}()
	}
	wg.Wait()
	for range senders * frames {
		select {
		case <-arrived:
		case err := <-errs:
			t.Fatal(err)
		case <-c.Done():
			t.Fatal("the connection closed: its stream was corrupted")
		case <-time.After(10 * time.Second):
			t.Fatal("no progress within 10s")
		}
	}
}
