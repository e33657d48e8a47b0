package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/control/access"
	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/config"
	"github.com/adjacentnet/adjacent/control/policy"
	"github.com/adjacentnet/adjacent/control/state"
	"github.com/adjacentnet/adjacent/dataplane"
	"github.com/adjacentnet/adjacent/dataplane/packet/portal"
	"github.com/adjacentnet/adjacent/internal/signals"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// portals is the registry of the node's live inlets and outlets, by name, and of the TUN
// device its transparent inlets share. The node checks requests and keeps the records in
// its state database; the registry runs the portals on the router. Its interface:
// startOutlet, removeOutlet, reopenOutlets, outletList, outletTarget; startInlet,
// stopInlet, removeInlet, inletList, inletNamed; recheck, collect and close.
type portals struct {
	cfg portalsConfig

	mu      sync.Mutex
	inlets  map[string]*inlet
	outlets map[string]*outlet
	tun     *transparent   // while there are transparent inlets
	raw     *packetDevice  // while there are packet-mode inlets
	engine  *portal.Engine // the outlets' packet side, started by the first packet flow
}

// portalsConfig is what the registry needs from the node.
type portalsConfig struct {
	Router *routing.Router
	Logger *slog.Logger
	// Flow is the flow of the node's listener, on which outlets are reachable.
	Flow func() routing.FlowID
	// OutletSessionsPerPeer caps an outlet's sessions (dials of its target) per peer.
	OutletSessionsPerPeer int
	// Policy is the current policy of a resource ("tcp-inlet" or "tcp-outlet", NAME).
	Policy func(resourceType, name string) *policy.Policy
	// Revoked reports (and logs) a message whose sender's membership was revoked.
	Revoked func(m *routing.Message, resource string) bool
	// Build builds a route to an outlet: the channels along it, the last one to the
	// outlet's node.
	Build func(ctx context.Context, route routing.Path) (builtPath, error)
	// Refused counts a path that could not be built, by reason.
	Refused func(err error)
}

// builtPath is a route to an outlet made usable, and how to let its channels go.
type builtPath struct {
	dataplane.PathRoute
	release func()
}

func newPortals(cfg portalsConfig) *portals {
	return &portals{cfg: cfg, inlets: map[string]*inlet{}, outlets: map[string]*outlet{},
		engine: portal.NewEngine(portal.EngineConfig{Router: cfg.Router, Logger: cfg.Logger})}
}

type outlet struct {
	rec state.Outlet
	dp  *dataplane.Outlet
	pk  *portal.Outlet // its packet side, to which dp hands the packet portals' messages
}

type inlet struct {
	rec  state.Inlet
	dp   portalInlet
	path *portalPath
	dev  string // a transparent inlet's TUN device
}

// portalInlet is what the registry asks of an inlet's data plane: a classic or transparent
// inlet's (dataplane.Inlet) or a packet-mode one's (portal.Inlet).
type portalInlet interface {
	Check(ctx context.Context) error
	Stats() *dataplane.Counters
	LastRefusal() (string, time.Time)
	Recheck() int
	Close() error
}

// hostPort completes [HOST:]PORT with the loopback address, as the config file does.
func hostPort(s string) (string, error) { return config.HostPort(s) }

// createOutlet adds a TCP outlet and remembers it.
func (n *Node) createOutlet(ctx context.Context, req api.CreateOutlet) (api.Outlet, error) {
	if req.Name == "" {
		req.Name = "outlet"
	}
	if !validRelayName(req.Name) || strings.HasPrefix(req.Name, "sc.") || strings.HasPrefix(req.Name, "portal.") {
		return api.Outlet{}, fmt.Errorf("tcp-outlet create: name %q: use letters, digits, '.', '_' and '-'", req.Name)
	}
	target, err := hostPort(req.To)
	if err != nil {
		return api.Outlet{}, fmt.Errorf("tcp-outlet create: --to %w", err)
	}
	if req.Allow != "" {
		if _, err := n.setPolicy(ctx, "name", req.Name, req.Allow); err != nil {
			return api.Outlet{}, fmt.Errorf("tcp-outlet create: --allow: %w", err)
		}
	}
	rec := state.Outlet{Name: req.Name, Target: target, Created: n.cfg.Now().Unix()}
	o, err := n.portals.startOutlet(rec)
	if err != nil {
		return api.Outlet{}, fmt.Errorf("tcp-outlet create: %w", err)
	}
	if err := n.state.PutOutlet(ctx, rec); err != nil {
		return api.Outlet{}, err
	}
	return n.portals.outletInfo(o), nil
}

// startOutlet runs the outlet rec on the router.
func (ps *portals) startOutlet(rec state.Outlet) (*outlet, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if _, ok := ps.outlets[rec.Name]; ok {
		return nil, fmt.Errorf("an outlet named %q exists; delete it first or choose another name with --from", rec.Name)
	}
	name := rec.Name
	admit := func(m *routing.Message) (bool, string) {
		if ps.cfg.Revoked(m, "outlet "+name) {
			return false, "the sender's membership was revoked"
		}
		return access.Allowed(ps.cfg.Policy("tcp-outlet", name), m)
	}
	allow := func(peer routing.Peer) (bool, string) {
		return access.AllowedPeer(ps.cfg.Policy("tcp-outlet", name), peer)
	}
	pk := portal.NewOutlet(portal.OutletConfig{Name: name, Target: rec.Target, Admit: admit, Allow: allow,
		Engine: ps.engine, Logger: ps.cfg.Logger.With("outlet", name)})
	dp := dataplane.NewOutlet(dataplane.OutletConfig{
		SessionConfig: dataplane.SessionConfig{Router: ps.cfg.Router, Logger: ps.cfg.Logger.With("outlet", name)},
		Target:        rec.Target,
		// Each session is a dial and a connection to the target: capped per peer.
		MaxSessionsPerPeer: ps.cfg.OutletSessionsPerPeer,
		Admit:              admit,
		Allow:              allow,
		Packets:            pk,
	})
	if err := ps.cfg.Router.Register(name, dp, ps.cfg.Flow()); err != nil {
		return nil, fmt.Errorf("name %q is taken by another worker", name)
	}
	o := &outlet{rec: rec, dp: dp, pk: pk}
	ps.outlets[name] = o
	ps.cfg.Logger.Info("outlet ready", "name", name, "target", rec.Target)
	return o, nil
}

// reopenOutlets lets the channels of a new listener reach the outlets.
func (ps *portals) reopenOutlets(flow routing.FlowID) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for name := range ps.outlets {
		ps.cfg.Router.Open(name, flow)
	}
}

// outletTarget is the target of the live outlet name.
func (ps *portals) outletTarget(name string) (string, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	o := ps.outlets[name]
	if o == nil {
		return "", false
	}
	return o.rec.Target, true
}

// outletInfo describes o: its sessions and packet flows together.
func (ps *portals) outletInfo(o *outlet) api.Outlet {
	st, pk := o.dp.Stats(), o.pk.Stats()
	return api.Outlet{
		Name: o.rec.Name, Target: o.rec.Target, Address: "/service/" + o.rec.Name,
		Policy: ps.cfg.Policy("tcp-outlet", o.rec.Name).String(),
		Active: st.Active.Load(), Total: st.Total.Load() + pk.Total.Load(),
		BytesIn: st.BytesIn.Load() + pk.BytesIn.Load(), BytesOut: st.BytesOut.Load() + pk.BytesOut.Load(),
	}
}

func (n *Node) deleteOutlet(ctx context.Context, name string) error {
	if err := n.portals.removeOutlet(name); err != nil {
		return err
	}
	return n.state.DeleteOutlet(ctx, name)
}

// removeOutlet stops the outlet name.
func (ps *portals) removeOutlet(name string) error {
	ps.mu.Lock()
	o := ps.outlets[name]
	delete(ps.outlets, name)
	ps.mu.Unlock()
	if o == nil {
		return fmt.Errorf("no outlet %q; see: adjacent tcp-outlet list", name)
	}
	ps.cfg.Router.Unregister(name)
	o.dp.Close()
	o.pk.Close()
	return nil
}

// createInlet adds a TCP inlet and remembers it.
func (n *Node) createInlet(ctx context.Context, req api.CreateInlet) (api.Inlet, error) {
	var rec state.Inlet
	if req.Tun {
		r, err := n.transparentRecord(ctx, req)
		if err != nil {
			return api.Inlet{}, fmt.Errorf("tcp-inlet create: %w", err)
		}
		rec = r
		rec.Raw = req.Raw
	} else {
		if req.HostsFile != "" || req.AddressRange != "" || req.Raw {
			return api.Inlet{}, errors.New("tcp-inlet create: --hosts-file, --address-range and --raw go with --tun")
		}
		listen, err := hostPort(req.From)
		if err != nil {
			return api.Inlet{}, fmt.Errorf("tcp-inlet create: --from %w", err)
		}
		rec = state.Inlet{Name: listen, Listen: listen}
	}
	route, err := n.inletRoute(req)
	if err != nil {
		return api.Inlet{}, fmt.Errorf("tcp-inlet create: %w", err)
	}
	name := rec.Name
	if req.Allow != "" {
		if _, err := n.setPolicy(ctx, "name", name, req.Allow); err != nil {
			return api.Inlet{}, fmt.Errorf("tcp-inlet create: --allow: %w", err)
		}
	}
	rec.Route, rec.Created = route.String(), n.cfg.Now().Unix()
	in, err := n.portals.startInlet(rec)
	if err != nil {
		return api.Inlet{}, fmt.Errorf("tcp-inlet create: %w", err)
	}
	if !req.NoWait {
		if err := n.checkInlet(ctx, in, req); err != nil {
			n.portals.stopInlet(in)
			return api.Inlet{}, err
		}
	}
	if err := n.state.PutInlet(ctx, rec); err != nil {
		return api.Inlet{}, err
	}
	return n.portals.inletInfo(in), nil
}

// inletCheckTimeout bounds the check of a new inlet's path: building it (retried while the hub
// or a relay is not there yet) and the outlet's answer.
const inletCheckTimeout = 10 * time.Second

// checkInlet opens the path of a new inlet once and asks the outlet whether it would take a
// connection from this node: the first failure is the error, with the reason and what to do.
func (n *Node) checkInlet(ctx context.Context, in *inlet, req api.CreateInlet) error {
	ctx, cancel := context.WithTimeout(ctx, inletCheckTimeout)
	defer cancel()
	err := in.dp.Check(ctx)
	if err == nil {
		return nil
	}
	const later = "or pass --no-wait to create the inlet for a path that comes later"
	outletName := req.To
	if req.Via == "" {
		outletName = in.path.route[len(in.path.route)-1].Value
	} else if outletName == "" {
		outletName = "outlet"
	}
	msg := err.Error()
	switch {
	case req.Via != "" && errors.Is(err, routing.ErrNoService) && strings.Contains(msg, strconv.Quote(relayPrefix+req.Via)):
		return fmt.Errorf("tcp-inlet create: relay %q not found at the hub; create it on the outlet's node with: adjacent relay create %s (%s)", req.Via, req.Via, later)
	case errors.Is(err, routing.ErrNoService) && strings.Contains(msg, strconv.Quote(outletName)):
		return fmt.Errorf("tcp-inlet create: no outlet %q at the outlet's node; create it there with: adjacent tcp-outlet create --to [HOST:]PORT --from %s (%s)", outletName, outletName, later)
	case errors.Is(err, errPolicy):
		return fmt.Errorf("tcp-inlet create: %w; change the inlet's --allow, or the outlet's node's attributes", err)
	case errors.Is(err, dataplane.ErrRefused) && strings.Contains(msg, "CAP_NET_RAW"):
		return fmt.Errorf("tcp-inlet create: %w; run the outlet's node as root or as the system service (adjacent.service grants CAP_NET_RAW), or leave out --raw, %s", err, later)
	case errors.Is(err, dataplane.ErrRefused):
		return fmt.Errorf("tcp-inlet create: %w; ask the outlet's owner to allow this node (adjacent policy create --resource %s --allow EXPR on the outlet's node), %s", err, outletName, later)
	}
	return fmt.Errorf("tcp-inlet create: the path to the outlet does not work: %w; check that the hub and the outlet's node are up, %s", err, later)
}

// stopInlet undoes startInlet, for an inlet whose check failed.
func (ps *portals) stopInlet(in *inlet) {
	ps.mu.Lock()
	ps.dropLocked(in)
	ps.mu.Unlock()
	in.dp.Close()
	in.path.close()
}

// dropLocked takes in out of the registry, and off the TUN device; ps.mu is held.
func (ps *portals) dropLocked(in *inlet) {
	delete(ps.inlets, in.rec.Name)
	switch {
	case in.rec.Raw:
		ps.stopRaw(in, ps.nameShared(in))
	case in.rec.Tun:
		ps.stopTransparent(in, ps.nameShared(in))
	}
}

// inletRoute is the route text from an inlet to its outlet.
func (n *Node) inletRoute(req api.CreateInlet) (routing.Path, error) {
	if req.Via != "" {
		p := n.project.Load()
		if p == nil {
			return nil, fmt.Errorf("--via needs a project: %w", errNoProject)
		}
		outletName := req.To
		if outletName == "" {
			outletName = "outlet"
		}
		return routing.ParsePath("/project/" + p.name + "/service/" + relayPrefix + req.Via + "/secure/" + listenerName + "/service/" + outletName)
	}
	if req.To == "" {
		return nil, errors.New("give --via RELAY (an outlet behind a relay of the project's hub) or --to ROUTE (a route to an outlet)")
	}
	path, err := routing.ParsePath(req.To)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	if path[len(path)-1].Proto != routing.ProtoService || len(path) < 2 {
		return nil, fmt.Errorf("--to %s: must end at an outlet, as in /ip4/10.0.0.2/tcp/4000/secure/api/service/outlet", path)
	}
	return path, nil
}

// startInlet runs the inlet rec: listening on its address, or on the TUN device.
func (ps *portals) startInlet(rec state.Inlet) (*inlet, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if _, ok := ps.inlets[rec.Name]; ok {
		return nil, fmt.Errorf("an inlet on %s exists; delete it first with: adjacent tcp-inlet delete %s", rec.Name, rec.Name)
	}
	route, err := routing.ParsePath(rec.Route)
	if err != nil {
		return nil, err
	}
	path := &portalPath{ps: ps, route: route, name: rec.Name}
	if rec.Raw {
		in := &inlet{rec: rec, path: path}
		if err := ps.startRaw(in); err != nil {
			path.close()
			return nil, err
		}
		ps.inlets[rec.Name] = in
		return in, nil
	}
	dp := dataplane.NewInlet(dataplane.InletConfig{SessionConfig: dataplane.SessionConfig{Router: ps.cfg.Router, Logger: ps.cfg.Logger.With("inlet", rec.Name)}, Path: path, Allow: path.allowed})
	in := &inlet{rec: rec, dp: dp, path: path}
	if rec.Tun {
		if err := ps.startTransparent(in); err != nil {
			dp.Close()
			path.close()
			return nil, err
		}
	} else {
		// No TCP keepalive on accepted clients, as ssh -L sets none: clients are mostly on
		// this host, and the four setsockopts per connection show in the connect rate.
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(context.Background(), "tcp", rec.Listen)
		if err != nil {
			return nil, err
		}
		go dp.Serve(ln)
	}
	ps.inlets[rec.Name] = in
	if rec.Tun {
		return in, nil
	}
	ps.cfg.Logger.Info("inlet listening", "listen", rec.Listen, "route", rec.Route)
	return in, nil
}

func (ps *portals) inletInfo(in *inlet) api.Inlet {
	st := in.dp.Stats()
	info := api.Inlet{
		Name: in.rec.Name, Listen: in.rec.Listen, Route: in.rec.Route,
		Policy: ps.cfg.Policy("tcp-inlet", in.rec.Name).String(), Up: in.path.up(),
		Active: st.Active.Load(), Total: st.Total.Load(), BytesIn: st.BytesIn.Load(), BytesOut: st.BytesOut.Load(),
		Refused: st.Refused.Load(), Dropped: st.Dropped.Load(),
	}
	if why, at := in.dp.LastRefusal(); why != "" {
		info.LastRefusal, info.LastRefusalAt = why, &at
	}
	if in.rec.Tun {
		info.Tun, info.Host, info.HostsFile, info.Raw = in.dev, in.rec.Host, in.rec.HostsFile, in.rec.Raw
	}
	return info
}

func (n *Node) deleteInlet(ctx context.Context, name string) error {
	name, err := n.portals.removeInlet(name)
	if err != nil {
		return err
	}
	return n.state.DeleteInlet(ctx, name)
}

// removeInlet stops the inlet name (a transparent one also by its virtual address), and
// returns its name.
func (ps *portals) removeInlet(name string) (string, error) {
	if hp, err := hostPort(name); err == nil {
		name = hp
	}
	ps.mu.Lock()
	in := ps.inlets[name]
	if in == nil { // a transparent inlet by its virtual address
		for _, o := range ps.inlets {
			if o.rec.Tun && o.rec.Listen == name {
				in = o
			}
		}
	}
	if in == nil {
		ps.mu.Unlock()
		return "", fmt.Errorf("no inlet %q; see: adjacent tcp-inlet list", name)
	}
	ps.dropLocked(in)
	ps.mu.Unlock()
	in.dp.Close()
	in.path.close()
	return in.rec.Name, nil
}

// restorePortals brings back the inlets and outlets of an earlier run.
func (n *Node) restorePortals(ctx context.Context) error {
	outs, err := n.state.Outlets(ctx)
	if err != nil {
		return err
	}
	for _, o := range outs {
		if _, err := n.portals.startOutlet(o); err != nil {
			n.log.Error("outlet not restored", "name", o.Name, "err", err)
		}
	}
	ins, err := n.state.Inlets(ctx)
	if err != nil {
		return err
	}
	for _, in := range ins {
		if _, err := n.portals.startInlet(in); err != nil {
			n.log.Error("inlet not restored", "listen", in.Listen, "err", err)
		}
	}
	return nil
}

// close stops all portals, and removes the TUN device.
func (ps *portals) close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, in := range ps.inlets {
		// The names go with the node: with no route to its address, a name left in the
		// hosts file would send clients out by the default route. They come back on restore.
		switch {
		case in.rec.Raw:
			ps.stopRaw(in, ps.nameShared(in))
			delete(ps.inlets, in.rec.Name)
		case in.rec.Tun:
			ps.stopTransparent(in, ps.nameShared(in))
			delete(ps.inlets, in.rec.Name)
		}
		in.dp.Close()
		in.path.close()
	}
	ps.closeTransparent()
	ps.closeRaw()
	for _, o := range ps.outlets {
		o.dp.Close()
		o.pk.Close()
	}
	ps.engine.Close()
}

// portalPath keeps an inlet's way to its outlet: the channels along the route, re-created
// on demand after they go (a restarted hub, a restarted outlet node).
type portalPath struct {
	ps    *portals
	route routing.Path // ends at /service/OUTLET
	name  string       // the inlet's, for its policy

	mu      sync.Mutex
	cur     dataplane.PathRoute
	release func() // lets the channels of cur go
	closed  bool
	// worked: the path was built once. Then a hop without the service (a relay not yet
	// registered again at a restarted hub) may come back, and is waited for like a timeout;
	// before, it is a mistake, answered at once.
	worked bool
}

// Open returns the live route to the outlet, building the channels if they are down. While
// the path cannot be built (a hub restarting, a relay not yet re-registered) it tries again
// until ctx ends.
func (p *portalPath) Open(ctx context.Context) (dataplane.PathRoute, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.closed {
			return dataplane.PathRoute{}, errors.New("inlet deleted")
		}
		if p.cur.Done != nil && !signals.Closed(p.cur.Done) {
			if ok, _ := p.allowed(p.cur.Peer); ok {
				return p.cur, nil
			}
			// The inlet's policy changed, or the outlet's node presented a credential it no
			// longer passes: build anew, which refuses the path with the reason.
		}
		p.releaseLocked()
		actx, cancel := context.WithTimeout(ctx, pathAttempt)
		err := p.build(actx)
		cancel()
		if err == nil {
			p.worked = true
			return p.cur, nil
		}
		if ctx.Err() != nil || !transient(err) && !(p.worked && errors.Is(err, routing.ErrNoService)) {
			p.ps.cfg.Refused(err)
			return dataplane.PathRoute{}, asRefusal(err)
		}
		p.ps.cfg.Logger.Debug("path to the outlet not built; retrying", "route", p.route.String(), "err", err)
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			p.ps.cfg.Refused(err)
			return dataplane.PathRoute{}, asRefusal(err)
		}
	}
}

// pathAttempt bounds one attempt to build a path, so a handshake lost on the way (to a
// relay not yet re-registered) is retried rather than waited for.
const pathAttempt = 3 * time.Second

var errPolicy = errors.New("the outlet's node does not satisfy the inlet's policy")

// pathRefusal is an error of a path that someone refused (a relay, a node, a router without
// the service, the inlet's own policy): the inlet counts it as a refusal.
type pathRefusal struct{ error }

func (r pathRefusal) Is(target error) bool { return target == dataplane.ErrRefused }
func (r pathRefusal) Unwrap() error        { return r.error }

func asRefusal(err error) error {
	if errors.Is(err, securechannel.ErrRefused) || errors.Is(err, routing.ErrNoService) || errors.Is(err, errPolicy) {
		return pathRefusal{err}
	}
	return err
}

// transient reports whether building a path may succeed if tried again soon: a timeout or a
// connection failure may pass; a refusal, an untrusted peer or a policy will not.
func transient(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) || errors.Is(err, errHubDown)
}

// build creates the channels of the path, and checks the inlet's policy on the outlet's
// node; p.mu is held.
func (p *portalPath) build(ctx context.Context) error {
	b, err := p.ps.cfg.Build(ctx, p.route)
	if err != nil {
		return err
	}
	if ok, why := p.allowed(b.Peer); !ok {
		b.release()
		return fmt.Errorf("%w: %s: %s", errPolicy, b.Peer.Identifier(), why)
	}
	p.cur, p.release = b.PathRoute, b.release
	return nil
}

// buildPath builds the channels of a route to an outlet, the last to the outlet's node.
func (n *Node) buildPath(ctx context.Context, route routing.Path) (builtPath, error) {
	prefix, last := route[:len(route)-1], route[len(route)-1]
	res, err := n.resolve(ctx, prefix, nil, n.member())
	if err != nil {
		return builtPath{}, err
	}
	if len(res.channels) == 0 {
		res.close()
		return builtPath{}, fmt.Errorf("route %s has no secure channel to the outlet's node", route)
	}
	ch := res.channels[len(res.channels)-1]
	to := res.Route
	if err := to.Append(routing.LocalAddress(last.Value)); err != nil {
		res.close()
		return builtPath{}, err
	}
	return builtPath{
		PathRoute: dataplane.PathRoute{
			To: to, Flow: res.Flow, Done: ch.Done(), Peer: ch.Peer(), Link: res.Link,
			Alive:  ch.Ping,
			Broken: func() { ch.Close() },
		},
		release: res.close,
	}, nil
}

// allowed evaluates the inlet's current policy for the outlet's node.
func (p *portalPath) allowed(peer routing.Peer) (bool, string) {
	return access.AllowedPeer(p.ps.cfg.Policy("tcp-inlet", p.name), peer)
}

func (p *portalPath) up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur.Done != nil && !signals.Closed(p.cur.Done)
}

// releaseLocked closes the channels of the last route; p.mu is held.
func (p *portalPath) releaseLocked() {
	if p.release != nil {
		p.release()
	}
	p.release = nil
	p.cur = dataplane.PathRoute{}
}

func (p *portalPath) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.releaseLocked()
}

func (ps *portals) outletList() []api.Outlet {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return listed(ps.outlets, ps.outletInfo, func(o api.Outlet) string { return o.Name })
}

// packetsDropped is the batches of the targets' packets the outlets dropped under back-pressure.
func (ps *portals) packetsDropped() int64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var n int64
	for _, o := range ps.outlets {
		n += o.pk.Stats().Dropped.Load()
	}
	return n
}

func (ps *portals) inletList() []api.Inlet {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return listed(ps.inlets, ps.inletInfo, func(in api.Inlet) string { return in.Name })
}

// listed is the info of each portal of m, sorted by name.
func listed[P, I any](m map[string]P, info func(P) I, name func(I) string) []I {
	out := make([]I, 0, len(m))
	for _, p := range m {
		out = append(out, info(p))
	}
	slices.SortFunc(out, func(a, b I) int { return strings.Compare(name(a), name(b)) })
	return out
}

// status is the node at a glance.
func (n *Node) status(ctx context.Context) api.Status {
	st := api.Status{Node: n.info(), Inlets: n.portals.inletList(), Outlets: n.portals.outletList(), Relays: []api.Relay{}, Channels: []api.Channel{}}
	if pr := n.project.Load(); pr != nil {
		p := n.projectInfo()
		st.Project = &p
		if pr.hub {
			st.Relays = n.relayList()
		}
	}
	if names, err := n.state.Relays(ctx); err == nil && len(st.Relays) == 0 {
		for _, name := range names { // held by this member
			st.Relays = append(st.Relays, api.Relay{Name: name, Address: "/service/" + relayPrefix + name, Owner: st.Node.Identifier})
		}
	}
	for _, c := range n.channels.list() {
		st.Channels = append(st.Channels, channelInfo(c))
	}
	var caps api.CapsStatus
	caps.MemberChannels, caps.StrangerChannels, caps.Refused = n.admit.counts()
	st.Caps = &caps
	if ft, rules := n.portals.engine.Stats(); ft.Opened > 0 || ft.Flows > 0 {
		st.Packets = &api.PacketStatus{Flows: ft.Flows, Opened: ft.Opened, Expired: ft.Expired,
			Refused: ft.Full + ft.PeerFull + ft.NoPort, Diverted: rules.Diverted, KernelRSTs: rules.RSTs,
			Dropped: n.portals.packetsDropped()}
	}
	return st
}

// inletNamed is the record of the live inlet key: by name, or a transparent one by its
// virtual address.
func (ps *portals) inletNamed(key string) (state.Inlet, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if in, ok := ps.inlets[key]; ok {
		return in.rec, true
	}
	for _, in := range ps.inlets {
		if in.rec.Tun && in.rec.Listen == key {
			return in.rec, true
		}
	}
	return state.Inlet{}, false
}

// collect reads the counters of every portal, under the registry's lock: each inlet's with
// whether its path is up, each outlet's.
func (ps *portals) collect(inlet func(name string, st *dataplane.Counters, up bool), outlet func(name string, st *dataplane.Counters)) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for name, in := range ps.inlets {
		inlet(name, in.dp.Stats(), in.path.up())
	}
	for name, o := range ps.outlets {
		outlet(name, o.dp.Stats())
	}
}
