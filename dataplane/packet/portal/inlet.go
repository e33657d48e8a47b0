package portal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/dataplane"
	"github.com/adjacentnet/adjacent/dataplane/packet"
	"github.com/adjacentnet/adjacent/dataplane/packet/flowtable"
	"github.com/adjacentnet/adjacent/internal/randid"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/routing"
)

// InletConfig configures an Inlet. Zero values take the defaults in brackets.
type InletConfig struct {
	Router  *routing.Router
	Logger  *slog.Logger // [slog.Default()]
	Path    dataplane.Path
	Allow   dataplane.Allow // may the outlet's node still serve the flows (Recheck); nil: yes
	Virtual netip.AddrPort  // the address and port the clients connect to
	Device  *Device
	// MaxFlows caps the clients' flows [16384]: a flood of SYNs fills no more.
	MaxFlows int
	// OpenTimeout bounds the opening of the path, after which SYNs are refused [10s].
	OpenTimeout time.Duration
}

// Inlet carries the TCP flows its clients open to its virtual address and port to an
// outlet, as packets: it keeps a table of its clients' flows (a segment that is not a SYN
// must belong to one, and the outlet's answers must too), gathers their segments into
// messages on its path, and writes the outlet's answers to the device. When the path goes,
// its flows are reset.
type Inlet struct {
	cfg       InletConfig
	name      string
	self      routing.Route
	table     *flowtable.Table
	stats     dataplane.Counters
	notOpened *ratelog.Logger
	dropped   *ratelog.Logger // batches dropped under back-pressure
	checks    chan error
	stop      chan struct{}

	cur     atomic.Pointer[path] // nil while there is no path
	touched bool                 // in the device's list of inlets to flush (read loop only)
	batch   *routing.Buffer      // the read loop's gathered segments

	mu        sync.Mutex
	epoch     uint64
	opening   bool
	closed    bool
	refusal   string
	refusedAt time.Time
}

// path is a route to the outlet with the number its flows carry in the table.
type path struct {
	dataplane.PathRoute
	epoch uint64
}

// NewInlet makes an inlet and serves its virtual address on cfg.Device.
func NewInlet(cfg InletConfig) (*Inlet, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = 16384
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = 10 * time.Second
	}
	t, err := flowtable.New(flowtable.Config{KeepPort: true, MaxFlows: cfg.MaxFlows, MaxPerPeer: cfg.MaxFlows})
	if err != nil {
		return nil, err
	}
	in := &Inlet{
		cfg: cfg, name: "packets." + randid.New(), table: t,
		checks: make(chan error, 1), stop: make(chan struct{}),
		notOpened: ratelog.New(cfg.Logger, slog.LevelInfo, "packet flows not opened", 10*time.Second),
		dropped:   ratelog.New(cfg.Logger, slog.LevelInfo, "packets dropped under back-pressure", 10*time.Second),
	}
	in.self = routing.MustRoute(routing.LocalAddress(in.name))
	if err := cfg.Router.Register(in.name, in); err != nil {
		return nil, err
	}
	if err := cfg.Device.add(in); err != nil {
		cfg.Router.Unregister(in.name)
		return nil, err
	}
	go in.expireLoop()
	return in, nil
}

func (in *Inlet) expireLoop() {
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			in.table.Expire()
		case <-in.stop:
			return
		}
	}
}

// Stats returns the inlet's counters: Active flows, Total opened, payload bytes both ways,
// Refused SYNs, batches Dropped under back-pressure.
func (in *Inlet) Stats() *dataplane.Counters {
	in.stats.Active.Store(int64(in.table.Len()))
	return &in.stats
}

// LastRefusal returns the last reason a flow or check was refused, and when; "" if none.
func (in *Inlet) LastRefusal() (string, time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.refusal, in.refusedAt
}

func (in *Inlet) noteRefusal(err error) {
	in.stats.Refused.Add(1)
	in.mu.Lock()
	in.refusal, in.refusedAt = err.Error(), time.Now()
	in.mu.Unlock()
	in.notOpened.Note(slog.String("virtual", in.cfg.Virtual.String()), slog.String("reason", err.Error()))
}

// fromClient takes a client's segment, with its offload, from the read loop, and reports
// whether it was gathered for the outlet (the loop then flushes the inlet after the batch). A
// large segment goes at once, after what was gathered, as a message made of frame, the
// buffer holding it behind its virtio-net header: then taken reports that the inlet took
// frame. A segment that cannot go is answered with a RST if no flow of it can exist, else
// dropped.
func (in *Inlet) fromClient(p *packet.Packet, o packet.Offload, frame *routing.Buffer) (gathered, taken bool) {
	syn := p.SYNOnly()
	cur := in.cur.Load()
	if cur == nil {
		if syn && in.openPath() {
			return false, false // the path is being opened; the client sends its SYN again
		}
		in.resetClient(p)
		return false, false
	}
	f, err := in.table.Forward(cur.epoch, p.Src(), p.Dst(), p.Dst(), p.Flags(), p.Next())
	if err != nil {
		if syn {
			in.noteRefusal(fmt.Errorf("%w by the inlet: %w", dataplane.ErrRefused, err))
		}
		in.resetClient(p)
		return false, false
	}
	if syn && f.State == flowtable.SynSent {
		in.stats.Total.Add(1)
	}
	in.stats.BytesIn.Add(int64(len(p.Payload())))
	if frame != nil && len(p.Bytes()) >= wholeMin {
		in.flush()
		in.sendWhole(frame, p, o)
		return false, true
	}
	if !gather(&in.batch, p.Bytes(), o) {
		in.flush()
		gather(&in.batch, p.Bytes(), o)
	}
	return true, false
}

// sendWhole sends p, which lies in frame behind its virtio-net header, as a message of its
// own: the message's kind and record header take the end of the virtio-net header's place.
func (in *Inlet) sendWhole(frame *routing.Buffer, p *packet.Packet, o packet.Offload) {
	frame.Advance(packet.VirtioHdrLen)
	frame.Truncate(len(p.Bytes()))
	asMessage(frame, o)
	in.batch = frame
	in.flush()
}

// resetClient answers p with a RST.
func (in *Inlet) resetClient(p *packet.Packet) {
	if r := packet.AppendResetFor(nil, p); len(r) > 0 {
		in.cfg.Device.writeReset(r)
	}
}

// flush sends the gathered segments on the path; with no path, or too much waiting in its
// link already, they are dropped, and the clients' TCP sends them again.
func (in *Inlet) flush() {
	b := in.batch
	if b == nil {
		return
	}
	in.batch = nil
	cur := in.cur.Load()
	if cur == nil || routing.BacklogOf(cur.Link) > maxBacklog {
		in.stats.Dropped.Add(1)
		in.dropped.Note(slog.String("virtual", in.cfg.Virtual.String()))
		b.Release()
		return
	}
	in.send(cur, b)
}

func (in *Inlet) send(cur *path, b *routing.Buffer) {
	m := routing.NewMessage()
	m.Onward = cur.To
	m.Return = in.self
	m.SetBody(b)
	in.cfg.Router.Send(m)
}

// openPath opens the path in the background unless it is being opened, and reports whether
// a SYN may wait for it: not while the last attempt was refused, for a second.
func (in *Inlet) openPath() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return false
	}
	if !in.opening {
		if in.refusal != "" && time.Since(in.refusedAt) < time.Second {
			return false
		}
		in.opening = true
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), in.cfg.OpenTimeout)
			defer cancel()
			_, err := in.usePath(ctx)
			in.mu.Lock()
			in.opening = false
			in.mu.Unlock()
			if err != nil {
				in.noteRefusal(err)
			}
		}()
	}
	return true
}

// usePath returns the current path, opening one if there is none.
func (in *Inlet) usePath(ctx context.Context) (*path, error) {
	if cur := in.cur.Load(); cur != nil {
		return cur, nil
	}
	pr, err := in.cfg.Path.Open(ctx)
	if err != nil {
		return nil, err
	}
	if in.cfg.Allow != nil {
		if ok, why := in.cfg.Allow(pr.Peer); !ok {
			return nil, fmt.Errorf("%w: the outlet's node is not allowed by the inlet's policy: %s", dataplane.ErrRefused, why)
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if cur := in.cur.Load(); cur != nil {
		return cur, nil
	}
	if in.closed {
		return nil, errors.New("inlet deleted")
	}
	in.epoch++
	cur := &path{PathRoute: pr, epoch: in.epoch}
	if err := in.cfg.Router.Open(in.name, pr.Flow); err != nil {
		return nil, err
	}
	in.cur.Store(cur)
	go func() {
		select {
		case <-pr.Done:
			in.dropPath(cur, false, "the secure channel under the portal closed")
		case <-in.stop:
		}
	}()
	return cur, nil
}

// dropPath forgets cur and resets its flows at the clients (and, with tell, at the outlet,
// whose path still works).
func (in *Inlet) dropPath(cur *path, tell bool, why string) int {
	if !in.cur.CompareAndSwap(cur, nil) {
		return 0
	}
	in.cfg.Router.Shut(in.name, cur.Flow)
	flows := in.table.RemovePeer(cur.epoch)
	if len(flows) == 0 {
		return 0
	}
	var toOutlet *routing.Buffer
	for _, f := range flows {
		in.cfg.Device.writeReset(packet.AppendReset(nil, f.Virtual, f.Client, f.TargetNext))
		if tell {
			r := packet.AppendReset(nil, f.Client, f.Virtual, f.ClientNext)
			if !gather(&toOutlet, r, packet.Offload{}) {
				in.send(cur, toOutlet)
				toOutlet = nil
				gather(&toOutlet, r, packet.Offload{})
			}
		}
	}
	if toOutlet != nil {
		in.send(cur, toOutlet)
	}
	in.cfg.Logger.Info("packet flows reset", "virtual", in.cfg.Virtual.String(), "flows", len(flows), "reason", why)
	return len(flows)
}

// HandleMessage takes the outlet's answers: its targets' segments for the clients, a
// refusal, a check's answer. It runs on the transport's goroutine.
func (in *Inlet) HandleMessage(m *routing.Message) {
	defer m.Release()
	if reason, ok := routing.Refusal(m); ok { // no such outlet at its node
		in.answerCheck(fmt.Errorf("%w by the outlet's node: %w", dataplane.ErrRefused, routing.RefusalError(reason)))
		return
	}
	p := m.Payload()
	if len(p) == 0 {
		return
	}
	switch p[0] {
	case msgPackets:
		in.toClients(p[1:])
	case msgChecked:
		in.answerCheck(nil)
	case msgRefused:
		if len(p)-1 <= maxReason {
			in.answerCheck(fmt.Errorf("%w by the outlet: %s", dataplane.ErrRefused, p[1:]))
		}
	}
}

// answerCheck counts a refusal and hands the answer to a waiting Check, if any.
func (in *Inlet) answerCheck(err error) {
	if err != nil {
		in.noteRefusal(err)
	}
	select {
	case in.checks <- err:
	default:
	}
}

// toClients writes the outlet's segments to the device: each must come from the virtual
// address to a client of a live flow, and never open one, so the outlet's node reaches no
// socket of this host but the clients' own connections.
func (in *Inlet) toClients(body []byte) {
	eachPacket(body, func(b []byte, o packet.Offload) {
		p, err := packet.Parse(b)
		if err != nil || p.Src() != in.cfg.Virtual || p.SYNOnly() {
			return
		}
		f, err := in.table.Reply(in.cfg.Virtual, p.Dst().Port(), p.Flags(), p.Next())
		if err != nil || f.Client != p.Dst() {
			return
		}
		in.stats.BytesOut.Add(int64(len(p.Payload())))
		in.cfg.Device.write(&p, o)
	})
}

// Check opens the path, as a client's SYN would, and asks the outlet whether it would carry
// packet flows from this node. It returns nil, or why not, wrapping dataplane.ErrRefused for
// a refusal (by the outlet's policy, a node that cannot inject packets, no such outlet).
func (in *Inlet) Check(ctx context.Context) error {
	cur, err := in.usePath(ctx)
	if err != nil {
		in.noteRefusal(err)
		return err
	}
	select {
	case <-in.checks:
	default:
	}
	m := routing.NewMessage()
	m.Onward = cur.To
	m.Return = in.self
	m.SetPayload([]byte{msgCheck})
	in.cfg.Router.Send(m)
	select {
	case err = <-in.checks:
		return err
	case <-cur.Done:
		return errors.New("the secure channel under the portal closed")
	case <-ctx.Done():
		return fmt.Errorf("no answer from the outlet: %w", ctx.Err())
	}
}

// Recheck resets, at both ends, the flows of a path whose outlet node Allow now refuses,
// and returns how many.
func (in *Inlet) Recheck() int {
	cur := in.cur.Load()
	if in.cfg.Allow == nil || cur == nil {
		return 0
	}
	if ok, why := in.cfg.Allow(cur.Peer); !ok {
		n := in.dropPath(cur, true, "the outlet's node is no longer allowed: "+why)
		in.stats.PolicyResets.Add(int64(n))
		return n
	}
	return 0
}

// Close resets the inlet's flows at both ends and stops serving its address.
func (in *Inlet) Close() error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return nil
	}
	in.closed = true
	in.mu.Unlock()
	in.cfg.Device.remove(in)
	if cur := in.cur.Load(); cur != nil {
		in.dropPath(cur, true, "inlet deleted")
	}
	close(in.stop)
	in.cfg.Router.Unregister(in.name)
	in.notOpened.Stop()
	in.dropped.Stop()
	return nil
}
