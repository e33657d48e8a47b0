package node

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/home"
)

// testNode is a node running in the test process, driven through its API socket.
type testNode struct {
	api    *api.Client
	listen string // its TCP address, if it listens
}

func (n *testNode) do(t *testing.T, method, path string, in, out any) {
	t.Helper()
	if err := n.api.Do(context.Background(), method, path, in, out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// startNode runs a node in a fresh home until the test ends; listen, if true, makes it
// accept connections on a loopback port.
func startNode(t *testing.T, name string, caps Caps, listen bool) *testNode {
	t.Helper()
	h := home.Home{Dir: filepath.Join(t.TempDir(), name)}
	cfg := Config{Home: h, Logger: slog.New(slog.DiscardHandler), Caps: caps}
	n := &testNode{api: api.NewClient(h.Socket())}
	if listen {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n.listen = l.Addr().String()
		l.Close()
		cfg.Listen = n.listen
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		n.api.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("node %s did not stop within 10s", name)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		var info api.NodeInfo
		err := n.api.Do(ctx, "GET", "/v1/node", nil, &info)
		if err == nil {
			return n
		}
		select {
		case err := <-done:
			t.Fatalf("node %s: %v", name, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not up within 20s: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startHub runs a node that is the hub of project acme.
func startHub(t *testing.T, caps Caps) *testNode {
	t.Helper()
	hub := startNode(t, "hub", caps, true)
	hub.do(t, "POST", "/v1/project", api.CreateProject{Name: "acme"}, nil)
	return hub
}

func (n *testNode) status(t *testing.T) api.Status {
	t.Helper()
	var st api.Status
	n.do(t, "GET", "/v1/status", nil, &st)
	return st
}

func (n *testNode) channels(t *testing.T) []api.Channel {
	t.Helper()
	var cs []api.Channel
	n.do(t, "GET", "/v1/secure-channels", nil, &cs)
	return cs
}

func (n *testNode) openChannel(to string) (api.Channel, error) {
	var ch api.Channel
	err := n.api.Do(context.Background(), "POST", "/v1/secure-channels", api.CreateChannel{To: to, Timeout: 10 * time.Second}, &ch)
	return ch, err
}

// enrolled starts a node that enrolls in the hub's project with a ticket made from req.
func enrolled(t *testing.T, hub *testNode, name string, req ...api.CreateTicket) *testNode {
	t.Helper()
	var tk api.Ticket
	hub.do(t, "POST", "/v1/project/tickets", append(req, api.CreateTicket{})[0], &tk)
	m := startNode(t, name, Caps{}, false)
	m.do(t, "POST", "/v1/enroll", api.Enroll{Ticket: tk.Ticket}, nil)
	eventually(t, name+" connected to the hub", func() bool {
		var p api.Project
		return m.api.Do(context.Background(), "GET", "/v1/project", nil, &p) == nil && p.Connected
	})
	return m
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hubAPI(hub *testNode) string {
	return "/ip4/127.0.0.1/tcp/" + hub.listen[strings.LastIndex(hub.listen, ":")+1:] + "/service/api"
}

// TestStrangerChannelsCappedAtHub: one identity without a credential of the project opens
// many channels to a hub over one connection: only StrangerChannelsPerIdentity succeed, the
// rest are refused with a reason, and the hub's goroutines do not grow with the refusals.
// Before, every one succeeded (issue 12, item 5: 200 channels in 2.5 s, 600 goroutines).
func TestStrangerChannelsCappedAtHub(t *testing.T) {
	const perIdentity, tries = 3, 20
	hub := startHub(t, Caps{StrangerChannelsPerIdentity: perIdentity, StrangerTimeout: time.Hour})
	stranger := startNode(t, "stranger", Caps{}, false)
	var opened, refused int
	var goroutines int
	for i := range tries {
		if i == perIdentity {
			runtime.GC()
			goroutines = runtime.NumGoroutine()
		}
		_, err := stranger.openChannel(hubAPI(hub))
		switch {
		case err == nil:
			opened++
		case strings.Contains(err.Error(), "capacity"):
			refused++
		default:
			t.Fatalf("channel %d: %v, want success or a refusal for capacity", i+1, err)
		}
	}
	if opened != perIdentity || refused != tries-perIdentity {
		t.Fatalf("%d channels opened, %d refused; want %d and %d", opened, refused, perIdentity, tries-perIdentity)
	}
	st := hub.status(t)
	if st.Caps == nil || st.Caps.StrangerChannels != perIdentity || st.Caps.Refused != tries-perIdentity {
		t.Fatalf("hub caps status = %+v, want %d stranger channels and %d refused", st.Caps, perIdentity, tries-perIdentity)
	}
	// Both nodes run in this process; the refusals left nothing behind on either.
	var now int
	eventually(t, "goroutines back to their number before the refusals", func() bool {
		runtime.GC()
		now = runtime.NumGoroutine()
		return now <= goroutines+10
	})
	t.Logf("%d channels opened, %d refused; goroutines in the process: %d after the first %d, %d after all", opened, refused, goroutines, perIdentity, now)
}

// TestStrangerChannelClosedIfNotEnrolled: a stranger's channel to the hub is closed after
// StrangerTimeout, while an enrolled member's channel stays; strangers reach the authority
// (enrollment works) but not the hub's other workers.
func TestStrangerChannelClosedIfNotEnrolled(t *testing.T) {
	hub := startHub(t, Caps{StrangerTimeout: time.Second})
	member := enrolled(t, hub, "member")
	stranger := startNode(t, "stranger", Caps{}, false)
	ch, err := stranger.openChannel(hubAPI(hub))
	if err != nil {
		t.Fatal(err)
	}
	// The echo worker answers members only, now by flow control as well as by policy.
	var reply api.MessageReply
	if err := stranger.api.Do(context.Background(), "POST", "/v1/messages", api.SendMessage{To: ch.Address + "/service/echo", Payload: []byte("hi"), Timeout: 500 * time.Millisecond}, &reply); err == nil {
		t.Fatalf("a stranger reached the hub's echo: %q", reply.Payload)
	}
	eventually(t, "stranger's channel closed by the hub", func() bool { return len(stranger.channels(t)) == 0 })
	if st := hub.status(t); st.Caps.StrangerChannels != 0 {
		t.Fatalf("hub still counts %d stranger channels", st.Caps.StrangerChannels)
	}
	var p api.Project
	member.do(t, "GET", "/v1/project", nil, &p)
	if !p.Connected {
		t.Fatal("the member's channel to the hub closed with the strangers'")
	}
	if st := hub.status(t); st.Caps.MemberChannels < 1 {
		t.Fatalf("hub counts %d member channels, want at least 1", st.Caps.MemberChannels)
	}
	member.do(t, "POST", "/v1/messages", api.SendMessage{To: "/project/acme/service/echo", Payload: []byte("hi")}, &reply)
	if string(reply.Payload) != "hi" {
		t.Fatalf("member's echo = %q", reply.Payload)
	}
}

// TestStrangerKeepsPreAuthFrameCap: a stranger's completed handshake does not lift the
// 16 KiB frame cap of its connection to the hub: a larger frame closes the connection, and
// the channel with it. A member's connection takes large frames.
func TestStrangerKeepsPreAuthFrameCap(t *testing.T) {
	hub := startHub(t, Caps{StrangerTimeout: time.Hour})
	member := enrolled(t, hub, "member")
	big := make([]byte, 20<<10)
	var reply api.MessageReply
	member.do(t, "POST", "/v1/messages", api.SendMessage{To: "/project/acme/service/echo", Payload: big}, &reply)
	if len(reply.Payload) != len(big) {
		t.Fatalf("member's echo of %d bytes came back with %d", len(big), len(reply.Payload))
	}

	stranger := startNode(t, "stranger", Caps{}, false)
	ch, err := stranger.openChannel(hubAPI(hub))
	if err != nil {
		t.Fatal(err)
	}
	stranger.api.Do(context.Background(), "POST", "/v1/messages", api.SendMessage{To: ch.Address + "/service/echo", Payload: big, Timeout: 500 * time.Millisecond}, nil)
	eventually(t, "stranger's connection closed after a 20 KiB frame", func() bool { return len(stranger.channels(t)) == 0 })
}

// TestRelaysPerIdentityCapped: a member allowed any relay name holds at most
// RelaysPerIdentity relays at the hub; registering one it holds again is still allowed.
func TestRelaysPerIdentityCapped(t *testing.T) {
	hub := startHub(t, Caps{RelaysPerIdentity: 2})
	member := enrolled(t, hub, "member", api.CreateTicket{Relay: "*"})
	for _, name := range []string{"one", "two", "one"} {
		member.do(t, "POST", "/v1/relays", api.CreateRelay{Name: name}, nil)
	}
	err := member.api.Do(context.Background(), "POST", "/v1/relays", api.CreateRelay{Name: "three"}, nil)
	if err == nil || !strings.Contains(err.Error(), "capacity") {
		t.Fatalf("third relay: %v, want a refusal for capacity", err)
	}
	if st := hub.status(t); st.Caps.Refused != 1 {
		t.Fatalf("hub counts %d refusals, want 1", st.Caps.Refused)
	}
}
