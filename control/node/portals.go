package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/control/access"
	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/state"
	"github.com/adjacentnet/adjacent/dataplane"
	"github.com/adjacentnet/adjacent/internal/signals"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// portals are the node's inlets and outlets, by name.
type portals struct {
	mu      sync.Mutex
	inlets  map[string]*inlet
	outlets map[string]*outlet
	tun     *transparent // while there are transparent inlets
}

type outlet struct {
	rec state.Outlet
	dp  *dataplane.Outlet
}

type inlet struct {
	rec  state.Inlet
	dp   *dataplane.Inlet
	path *portalPath
	dev  string // a transparent inlet's TUN device
}

// hostPort completes [HOST:]PORT with the loopback address.
func hostPort(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty address")
	}
	if _, err := strconv.ParseUint(s, 10, 16); err == nil {
		s = "127.0.0.1:" + s
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q: want [HOST:]PORT, e.g. 5432 or 10.0.0.5:5432", s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return "", fmt.Errorf("%q: port must be a number from 1 to 65535", s)
	}
	return net.JoinHostPort(host, port), nil
}

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
	if err := n.startOutlet(rec); err != nil {
		return api.Outlet{}, fmt.Errorf("tcp-outlet create: %w", err)
	}
	if err := n.state.PutOutlet(ctx, rec); err != nil {
		return api.Outlet{}, err
	}
	return n.outletInfo(n.portals.outlets[req.Name]), nil
}

func (n *Node) startOutlet(rec state.Outlet) error {
	n.portals.mu.Lock()
	defer n.portals.mu.Unlock()
	if _, ok := n.portals.outlets[rec.Name]; ok {
		return fmt.Errorf("an outlet named %q exists; delete it first or choose another name with --from", rec.Name)
	}
	name := rec.Name
	dp := dataplane.NewOutlet(dataplane.OutletConfig{
		SessionConfig: dataplane.SessionConfig{Router: n.router, Logger: n.log.With("outlet", name)},
		Target:        rec.Target,
		// Each session is a dial and a connection to the target: capped per peer.
		MaxSessionsPerPeer: n.cfg.Caps.OutletSessionsPerPeer,
		Admit: func(m *routing.Message) (bool, string) {
			if n.revokedSender(m, "outlet "+name) {
				return false, "the sender's membership was revoked"
			}
			return access.Allowed(n.policyOf("tcp-outlet", name), m)
		},
		Allow: func(peer routing.Peer) (bool, string) {
			return access.AllowedPeer(n.policyOf("tcp-outlet", name), peer)
		},
	})
	if err := n.router.Register(name, dp, n.listener.Flow()); err != nil {
		return fmt.Errorf("name %q is taken by another worker", name)
	}
	if n.portals.outlets == nil {
		n.portals.outlets = map[string]*outlet{}
	}
	n.portals.outlets[name] = &outlet{rec: rec, dp: dp}
	n.log.Info("outlet ready", "name", name, "target", rec.Target)
	return nil
}

// reopenOutlets lets the channels of a new listener reach the outlets.
func (n *Node) reopenOutlets(flow routing.FlowID) {
	n.portals.mu.Lock()
	defer n.portals.mu.Unlock()
	for name := range n.portals.outlets {
		n.router.Open(name, flow)
	}
}

func (n *Node) outletInfo(o *outlet) api.Outlet {
	st := o.dp.Stats()
	return api.Outlet{
		Name: o.rec.Name, Target: o.rec.Target, Address: "/service/" + o.rec.Name,
		Policy: n.policyOf("tcp-outlet", o.rec.Name).String(),
		Active: st.Active.Load(), Total: st.Total.Load(), BytesIn: st.BytesIn.Load(), BytesOut: st.BytesOut.Load(),
	}
}

func (n *Node) deleteOutlet(ctx context.Context, name string) error {
	n.portals.mu.Lock()
	o := n.portals.outlets[name]
	delete(n.portals.outlets, name)
	n.portals.mu.Unlock()
	if o == nil {
		return fmt.Errorf("no outlet %q; see: adjacent tcp-outlet list", name)
	}
	n.router.Unregister(name)
	o.dp.Close()
	return n.state.DeleteOutlet(ctx, name)
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
	} else {
		if req.HostsFile != "" || req.AddressRange != "" {
			return api.Inlet{}, errors.New("tcp-inlet create: --hosts-file and --address-range go with --tun")
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
	in, err := n.startInlet(rec)
	if err != nil {
		return api.Inlet{}, fmt.Errorf("tcp-inlet create: %w", err)
	}
	if !req.NoWait {
		if err := n.checkInlet(ctx, in, req); err != nil {
			n.stopInlet(in)
			return api.Inlet{}, err
		}
	}
	if err := n.state.PutInlet(ctx, rec); err != nil {
		return api.Inlet{}, err
	}
	return n.inletInfo(in), nil
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
	case errors.Is(err, dataplane.ErrRefused):
		return fmt.Errorf("tcp-inlet create: %w; ask the outlet's owner to allow this node (adjacent policy create --resource %s --allow EXPR on the outlet's node), %s", err, outletName, later)
	}
	return fmt.Errorf("tcp-inlet create: the path to the outlet does not work: %w; check that the hub and the outlet's node are up, %s", err, later)
}

// stopInlet undoes startInlet, for an inlet whose check failed.
func (n *Node) stopInlet(in *inlet) {
	n.portals.mu.Lock()
	delete(n.portals.inlets, in.rec.Name)
	if in.rec.Tun {
		n.stopTransparent(in, n.nameShared(in))
	}
	n.portals.mu.Unlock()
	in.dp.Close()
	in.path.close()
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

func (n *Node) startInlet(rec state.Inlet) (*inlet, error) {
	n.portals.mu.Lock()
	defer n.portals.mu.Unlock()
	if _, ok := n.portals.inlets[rec.Name]; ok {
		return nil, fmt.Errorf("an inlet on %s exists; delete it first with: adjacent tcp-inlet delete %s", rec.Name, rec.Name)
	}
	route, err := routing.ParsePath(rec.Route)
	if err != nil {
		return nil, err
	}
	path := &portalPath{n: n, route: route, name: rec.Name}
	dp := dataplane.NewInlet(dataplane.InletConfig{SessionConfig: dataplane.SessionConfig{Router: n.router, Logger: n.log.With("inlet", rec.Name)}, Path: path, Allow: path.allowed})
	in := &inlet{rec: rec, dp: dp, path: path}
	if rec.Tun {
		if err := n.startTransparent(in); err != nil {
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
	if n.portals.inlets == nil {
		n.portals.inlets = map[string]*inlet{}
	}
	n.portals.inlets[rec.Name] = in
	if rec.Tun {
		return in, nil
	}
	n.log.Info("inlet listening", "listen", rec.Listen, "route", rec.Route)
	return in, nil
}

func (n *Node) inletInfo(in *inlet) api.Inlet {
	st := in.dp.Stats()
	info := api.Inlet{
		Name: in.rec.Name, Listen: in.rec.Listen, Route: in.rec.Route,
		Policy: n.policyOf("tcp-inlet", in.rec.Name).String(), Up: in.path.up(),
		Active: st.Active.Load(), Total: st.Total.Load(), BytesIn: st.BytesIn.Load(), BytesOut: st.BytesOut.Load(),
		Refused: st.Refused.Load(),
	}
	if why, at := in.dp.LastRefusal(); why != "" {
		info.LastRefusal, info.LastRefusalAt = why, &at
	}
	if in.rec.Tun {
		info.Tun, info.Host, info.HostsFile = in.dev, in.rec.Host, in.rec.HostsFile
	}
	return info
}

func (n *Node) deleteInlet(ctx context.Context, name string) error {
	if hp, err := hostPort(name); err == nil {
		name = hp
	}
	n.portals.mu.Lock()
	in := n.portals.inlets[name]
	if in == nil { // a transparent inlet by its virtual address
		for _, o := range n.portals.inlets {
			if o.rec.Tun && o.rec.Listen == name {
				in = o
			}
		}
	}
	if in == nil {
		n.portals.mu.Unlock()
		return fmt.Errorf("no inlet %q; see: adjacent tcp-inlet list", name)
	}
	delete(n.portals.inlets, in.rec.Name)
	if in.rec.Tun {
		n.stopTransparent(in, n.nameShared(in))
	}
	n.portals.mu.Unlock()
	in.dp.Close()
	in.path.close()
	return n.state.DeleteInlet(ctx, in.rec.Name)
}

// restorePortals brings back the inlets and outlets of an earlier run.
func (n *Node) restorePortals(ctx context.Context) error {
	outs, err := n.state.Outlets(ctx)
	if err != nil {
		return err
	}
	for _, o := range outs {
		if err := n.startOutlet(o); err != nil {
			n.log.Error("outlet not restored", "name", o.Name, "err", err)
		}
	}
	ins, err := n.state.Inlets(ctx)
	if err != nil {
		return err
	}
	for _, in := range ins {
		if _, err := n.startInlet(in); err != nil {
			n.log.Error("inlet not restored", "listen", in.Listen, "err", err)
		}
	}
	return nil
}

func (n *Node) closePortals() {
	n.portals.mu.Lock()
	defer n.portals.mu.Unlock()
	for _, in := range n.portals.inlets {
		if in.rec.Tun {
			// The names go with the node: with no route to its address, a name left in the
			// hosts file would send clients out by the default route. They come back on restore.
			n.stopTransparent(in, n.nameShared(in))
			delete(n.portals.inlets, in.rec.Name)
		}
		in.dp.Close()
		in.path.close()
	}
	n.closeTransparent()
	for _, o := range n.portals.outlets {
		o.dp.Close()
	}
}

// portalPath keeps an inlet's way to its outlet: the channels along the route, re-created
// on demand after they go (a restarted hub, a restarted outlet node).
type portalPath struct {
	n     *Node
	route routing.Path // ends at /service/OUTLET
	name  string       // the inlet's, for its policy

	mu       sync.Mutex
	cur      dataplane.PathRoute
	channels []*securechannel.Channel
	closed   bool
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
		p.release()
		actx, cancel := context.WithTimeout(ctx, pathAttempt)
		err := p.build(actx)
		cancel()
		if err == nil {
			p.worked = true
			return p.cur, nil
		}
		if ctx.Err() != nil || !transient(err) && !(p.worked && errors.Is(err, routing.ErrNoService)) {
			p.n.inletRefused(err)
			return dataplane.PathRoute{}, asRefusal(err)
		}
		p.n.log.Debug("path to the outlet not built; retrying", "route", p.route.String(), "err", err)
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			p.n.inletRefused(err)
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

// build creates the channels of the path; p.mu is held.
func (p *portalPath) build(ctx context.Context) error {
	prefix, last := p.route[:len(p.route)-1], p.route[len(p.route)-1]
	res, err := p.n.resolve(ctx, prefix, nil, p.n.member())
	if err != nil {
		return err
	}
	if len(res.channels) == 0 {
		res.close()
		return fmt.Errorf("route %s has no secure channel to the outlet's node", p.route)
	}
	ch := res.channels[len(res.channels)-1]
	if ok, why := p.allowed(ch.Peer()); !ok {
		res.close()
		return fmt.Errorf("%w: %s: %s", errPolicy, ch.Peer().Identifier(), why)
	}
	to := res.Route
	if err := to.Append(routing.LocalAddress(last.Value)); err != nil {
		res.close()
		return err
	}
	p.channels = res.channels
	p.cur = dataplane.PathRoute{
		To: to, Flow: res.Flow, Done: ch.Done(), Peer: ch.Peer(), Link: res.Link,
		Alive:  ch.Ping,
		Broken: func() { ch.Close() },
	}
	return nil
}

// allowed evaluates the inlet's current policy for the outlet's node.
func (p *portalPath) allowed(peer routing.Peer) (bool, string) {
	return access.AllowedPeer(p.n.policyOf("tcp-inlet", p.name), peer)
}

func (p *portalPath) up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur.Done != nil && !signals.Closed(p.cur.Done)
}

// release closes the channels of the last route; p.mu is held.
func (p *portalPath) release() {
	for i := len(p.channels) - 1; i >= 0; i-- {
		p.channels[i].Close()
	}
	p.channels = nil
	p.cur = dataplane.PathRoute{}
}

func (p *portalPath) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.release()
}

func (n *Node) outletList() []api.Outlet {
	n.portals.mu.Lock()
	defer n.portals.mu.Unlock()
	out := make([]api.Outlet, 0, len(n.portals.outlets))
	for _, o := range n.portals.outlets {
		out = append(out, n.outletInfo(o))
	}
	slices.SortFunc(out, func(a, b api.Outlet) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (n *Node) inletList() []api.Inlet {
	n.portals.mu.Lock()
	defer n.portals.mu.Unlock()
	out := make([]api.Inlet, 0, len(n.portals.inlets))
	for _, in := range n.portals.inlets {
		out = append(out, n.inletInfo(in))
	}
	slices.SortFunc(out, func(a, b api.Inlet) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// status is the node at a glance.
func (n *Node) status(ctx context.Context) api.Status {
	st := api.Status{Node: n.info(), Inlets: n.inletList(), Outlets: n.outletList(), Relays: []api.Relay{}, Channels: []api.Channel{}}
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
	return st
}
