package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/config"
	"github.com/adjacentnet/adjacent/control/hub"
)

// The declarative config (control/config): the node reads Config.ConfigFile at start, on
// Config.Reload (SIGHUP) and on POST /v1/config/reload, and turns the difference between
// the file and what it applied last into its ordinary create and delete calls. What the
// file owns is remembered in the state database (settingConfig, the last applied file as
// YAML), so a resource made with the CLI is never deleted by a reload and `status` tells
// the two apart (origin "config"). An unchanged inlet or outlet is not touched: its
// sessions stay up.

// settingConfig holds the config last applied, as YAML.
const settingConfig = "config.applied"

// OriginConfig marks a resource the config file owns.
const OriginConfig = "config"

// configState is the config the node applied last; nil without --config.
type configState struct {
	mu      sync.Mutex // serialises applies
	applied atomic.Pointer[config.Config]
}

// readConfig reads and validates the node's config file.
func (n *Node) readConfig() (*config.Config, error) {
	b, err := os.ReadFile(n.cfg.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("config: %w; check the path given to --config", err)
	}
	return config.Decode(n.cfg.ConfigFile, b)
}

// loadApplied returns the config applied by an earlier run, or nil.
func (n *Node) loadApplied(ctx context.Context) *config.Config {
	text, ok, err := n.state.Setting(ctx, settingConfig)
	if err != nil || !ok {
		return nil
	}
	c, err := config.Decode("(applied config)", []byte(text))
	if err != nil {
		n.log.Warn("the config applied last does not decode; treating every resource as new", "err", err)
		return nil
	}
	return c
}

// ownedConfig returns the config the node applied last, or nil.
func (n *Node) ownedConfig() *config.Config {
	return n.config.applied.Load()
}

// reloadConfig reads the config file again and applies it. An invalid file changes nothing.
func (n *Node) reloadConfig(ctx context.Context) (api.ConfigApplied, error) {
	if n.cfg.ConfigFile == "" {
		return api.ConfigApplied{}, badRequest(errors.New("reload: this node runs without a config file; start it with: adjacent node run --config FILE"))
	}
	daemon.SdNotify(false, daemon.SdNotifyReloading)
	defer daemon.SdNotify(false, daemon.SdNotifyReady)
	c, err := n.readConfig()
	if err != nil {
		n.log.Error("config refused; the running state is kept", "err", err)
		return api.ConfigApplied{File: n.cfg.ConfigFile}, badRequest(err)
	}
	return n.applyConfig(ctx, c)
}

// applyConfig makes the node what c declares. Failures of single resources (a port in use,
// a hub that does not answer) are reported and the rest applied; what failed to be created
// is not recorded as owned, so the next reload tries again.
func (n *Node) applyConfig(ctx context.Context, c *config.Config) (api.ConfigApplied, error) {
	n.config.mu.Lock()
	defer n.config.mu.Unlock()
	res := api.ConfigApplied{File: n.cfg.ConfigFile}
	var errs []error
	fail := func(what string, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
	}
	if n.cfg.LogLevel != nil && c.LogLevel != "" {
		n.cfg.LogLevel.UnmarshalText([]byte(c.LogLevel))
	}
	if err := n.applyProject(ctx, c); err != nil {
		return res, err
	}
	prev := n.config.applied.Load()
	if prev == nil {
		prev = n.loadApplied(ctx)
	}
	d := config.Compare(prev, c)
	applied := *c
	applied.Relays, applied.Outlets, applied.Inlets, applied.Policies = nil, nil, nil, nil

	// Policies first, so new inlets and outlets are guarded from their first session.
	for _, p := range d.Policies.Delete {
		kind, resource := p.Kind()
		if err := n.deletePolicy(ctx, kind, resource); err != nil {
			fail("policy "+p.Key(), err)
		}
		res.Deleted = append(res.Deleted, "policy "+p.Key())
	}
	for _, group := range [][]config.Policy{d.Policies.Keep, d.Policies.Replace, d.Policies.Create} {
		for _, p := range group {
			kind, resource := p.Kind()
			if _, err := n.setPolicy(ctx, kind, resource, p.Allow); err != nil {
				fail("policy "+p.Key(), err)
				continue
			}
			applied.Policies = append(applied.Policies, p)
		}
	}
	res.Created, res.Replaced = appendKeys(res.Created, d.Policies.Create, "policy ", config.Policy.Key), appendKeys(res.Replaced, d.Policies.Replace, "policy ", config.Policy.Key)

	// Relays.
	for _, r := range d.Relays.Delete {
		if err := n.deleteRelay(ctx, r.Name); err != nil {
			fail("relay "+r.Name, err)
		}
		res.Deleted = append(res.Deleted, "relay "+r.Name)
	}
	for _, group := range [][]config.Relay{d.Relays.Keep, d.Relays.Create} {
		for _, r := range group {
			if err := n.ensureRelay(ctx, r.Name); err != nil {
				fail("relay "+r.Name, err)
				continue
			}
			applied.Relays = append(applied.Relays, r)
		}
	}
	res.Created = appendKeys(res.Created, d.Relays.Create, "relay ", func(r config.Relay) string { return r.Name })

	// Outlets: gone, then changed, then new; unchanged ones only if they are missing.
	for _, o := range d.Outlets.Delete {
		if err := n.deleteOutlet(ctx, o.Key()); err != nil {
			fail("outlet "+o.Key(), err)
		}
		n.dropInlinePolicy(ctx, o.Key(), o.Allow, c)
		res.Deleted = append(res.Deleted, "outlet "+o.Key())
	}
	for _, o := range d.Outlets.Replace {
		n.deleteOutlet(ctx, o.Key())
		n.dropInlinePolicy(ctx, o.Key(), "x", c)
	}
	for _, group := range [][]config.Outlet{d.Outlets.Keep, d.Outlets.Replace, d.Outlets.Create} {
		for _, o := range group {
			if err := n.ensureOutlet(ctx, o); err != nil {
				fail("outlet "+o.Key(), err)
				continue
			}
			applied.Outlets = append(applied.Outlets, o)
		}
	}
	res.Created, res.Replaced = appendKeys(res.Created, d.Outlets.Create, "outlet ", config.Outlet.Key), appendKeys(res.Replaced, d.Outlets.Replace, "outlet ", config.Outlet.Key)

	// Inlets likewise.
	for _, in := range d.Inlets.Delete {
		if err := n.deleteInlet(ctx, in.Key()); err != nil {
			fail("inlet "+in.Key(), err)
		}
		n.dropInlinePolicy(ctx, n.inletName(in.Key()), in.Allow, c)
		res.Deleted = append(res.Deleted, "inlet "+in.Key())
	}
	for _, in := range d.Inlets.Replace {
		n.deleteInlet(ctx, in.Key())
		n.dropInlinePolicy(ctx, n.inletName(in.Key()), "x", c)
	}
	for _, group := range [][]config.Inlet{d.Inlets.Keep, d.Inlets.Replace, d.Inlets.Create} {
		for _, in := range group {
			if err := n.ensureInlet(ctx, in); err != nil {
				fail("inlet "+in.Key(), err)
				continue
			}
			applied.Inlets = append(applied.Inlets, in)
		}
	}
	res.Created, res.Replaced = appendKeys(res.Created, d.Inlets.Create, "inlet ", config.Inlet.Key), appendKeys(res.Replaced, d.Inlets.Replace, "inlet ", config.Inlet.Key)

	if b, err := config.Marshal(&applied); err == nil {
		if err := n.state.SetSetting(ctx, settingConfig, string(b)); err != nil {
			fail("remember the applied config", err)
		}
	}
	n.config.applied.Store(&applied)
	for _, e := range errs {
		res.Errors = append(res.Errors, e.Error())
	}
	n.log.Info("config applied", "file", n.cfg.ConfigFile, "created", res.Created, "deleted", res.Deleted, "replaced", res.Replaced, "errors", len(res.Errors))
	if len(errs) > 0 {
		return res, badRequest(fmt.Errorf("config %s applied in part: %w", n.cfg.ConfigFile, errors.Join(errs...)))
	}
	return res, nil
}

func appendKeys[T any](to []string, items []T, prefix string, key func(T) string) []string {
	for _, it := range items {
		to = append(to, prefix+key(it))
	}
	return to
}

// applyProject creates the declared project, or redeems the declared ticket, once: a node
// in a project already keeps it (a changed listen: or credential_lifetime: of the hub takes
// no effect), and one in another project than the file's hub is refused.
func (n *Node) applyProject(ctx context.Context, c *config.Config) error {
	p := n.project.Load()
	switch {
	case c.Hub != nil && p != nil && (p.name != c.Hub.Project || !p.hub):
		return badRequest(&config.Error{File: n.cfg.ConfigFile, Line: c.Hub.Line, Reason: fmt.Sprintf("hub: this node is already in project %s; use another home for another project", p.name)})
	case c.Hub != nil && p == nil:
		_, err := n.createProject(ctx, api.CreateProject{Name: c.Hub.Project, Listen: c.Hub.Listen, PublicAddress: c.Hub.PublicAddress, Lifetime: time.Duration(c.Hub.CredentialLifetime)})
		if err != nil {
			return fmt.Errorf("%s:%d: %w", n.cfg.ConfigFile, c.Hub.Line, err)
		}
	case c.Enroll != nil && p == nil:
		if _, err := n.enroll(ctx, c.Enroll.Ticket); err != nil {
			return fmt.Errorf("%s:%d: enroll with %s: %w", n.cfg.ConfigFile, c.Enroll.Line, c.Enroll.Ticket, err)
		}
	}
	return nil
}

// deletePolicy removes a stored policy.
func (n *Node) deletePolicy(ctx context.Context, kind, resource string) error {
	if _, err := n.state.DeletePolicy(ctx, kind, resource); err != nil {
		return err
	}
	return n.policies.load(ctx, n.state)
}

// dropInlinePolicy deletes the name policy an outlet's or inlet's allow: made, unless the
// new file declares it as a policy of its own.
func (n *Node) dropInlinePolicy(ctx context.Context, name, allow string, c *config.Config) {
	if allow == "" || slices.ContainsFunc(c.Policies, func(p config.Policy) bool { return p.Name == name }) {
		return
	}
	n.deletePolicy(ctx, "name", name)
}

// ensureRelay holds a relay at the hub. A member whose hub does not answer remembers it,
// and registers it when the session comes up.
func (n *Node) ensureRelay(ctx context.Context, name string) error {
	if p := n.project.Load(); p != nil && !p.hub {
		if names, err := n.state.Relays(ctx); err == nil && slices.Contains(names, name) {
			return nil // held; registered again whenever the session to the hub comes up
		}
	}
	_, err := n.createRelay(ctx, name)
	if err != nil && (errors.Is(err, errHubDown) || errors.Is(err, context.DeadlineExceeded)) {
		if p := n.project.Load(); p != nil && !p.hub {
			n.log.Warn("relay kept for when the hub answers", "name", name, "err", err)
			return n.state.AddRelay(ctx, name, n.cfg.Now().Unix())
		}
	}
	return err
}

// deleteRelay drops a relay at the hub and from the state.
func (n *Node) deleteRelay(ctx context.Context, name string) error {
	err := n.callHub(ctx, relaysWorker, hub.RelayDelete{Name: name}, nil)
	if derr := n.state.DeleteRelay(ctx, name); err == nil {
		err = derr
	}
	return err
}

// ensureOutlet makes the outlet o declares, adopting a live one made the same way.
func (n *Node) ensureOutlet(ctx context.Context, o config.Outlet) error {
	target, _ := config.HostPort(o.To)
	if live, ok := n.portals.outletTarget(o.Key()); ok {
		if live == target {
			if o.Allow != "" {
				_, err := n.setPolicy(ctx, "name", o.Key(), o.Allow)
				return err
			}
			return nil
		}
		if err := n.deleteOutlet(ctx, o.Key()); err != nil {
			return err
		}
	}
	_, err := n.createOutlet(ctx, api.CreateOutlet{Name: o.Key(), To: o.To, Allow: o.Allow})
	return err
}

// ensureInlet makes the inlet in declares, adopting a live one with the same route. It does
// not wait for the inlet's path: the file declares what should be, and the outlet may come
// later (an inlet's refusals show in status).
func (n *Node) ensureInlet(ctx context.Context, in config.Inlet) error {
	req := api.CreateInlet{From: in.From, Via: in.Via, To: in.To, Allow: in.Allow, Tun: in.Tun, Raw: in.Raw, HostsFile: in.HostsFile, AddressRange: in.AddressRange, NoWait: true}
	route, err := n.inletRoute(req)
	if err != nil {
		return err
	}
	if live, ok := n.portals.inletNamed(in.Key()); ok {
		if live.Route == route.String() && live.Tun == in.Tun && live.Raw == in.Raw {
			if in.Allow != "" {
				_, err := n.setPolicy(ctx, "name", live.Name, in.Allow)
				return err
			}
			return nil
		}
		if err := n.deleteInlet(ctx, live.Name); err != nil {
			return err
		}
	}
	_, err = n.createInlet(ctx, req)
	return err
}

// inletName is the name the node gives the inlet listening at key.
func (n *Node) inletName(key string) string {
	if in, ok := n.portals.inletNamed(key); ok {
		return in.Name
	}
	return key
}

// markOrigin tells the file's resources in a status apart from those made with the CLI.
func (n *Node) markOrigin(st api.Status) api.Status {
	c := n.ownedConfig()
	if c == nil {
		return st
	}
	for i := range st.Inlets {
		if slices.ContainsFunc(c.Inlets, func(in config.Inlet) bool { return in.Key() == st.Inlets[i].Name }) {
			st.Inlets[i].Origin = OriginConfig
		}
	}
	for i := range st.Outlets {
		if slices.ContainsFunc(c.Outlets, func(o config.Outlet) bool { return o.Key() == st.Outlets[i].Name }) {
			st.Outlets[i].Origin = OriginConfig
		}
	}
	for i := range st.Relays {
		if slices.ContainsFunc(c.Relays, func(r config.Relay) bool { return r.Name == st.Relays[i].Name }) {
			st.Relays[i].Origin = OriginConfig
		}
	}
	return st
}

// effectiveConfig is the node's state as a config: the file's declarations as written, and
// what the CLI made in the form the CLI takes. Decode accepts it.
func (n *Node) effectiveConfig(ctx context.Context) (*config.Config, error) {
	out := &config.Config{}
	owned := n.ownedConfig()
	if owned != nil {
		out.Hub, out.Enroll, out.APISocket, out.LogLevel, out.Metrics = owned.Hub, owned.Enroll, owned.APISocket, owned.LogLevel, owned.Metrics
	} else {
		owned = &config.Config{}
	}
	if p := n.project.Load(); p != nil && p.hub && out.Hub == nil {
		out.Hub = &config.Hub{Project: p.name}
	}
	inline := map[string]bool{}
	for _, o := range n.portals.outletList() {
		i := slices.IndexFunc(owned.Outlets, func(d config.Outlet) bool { return d.Key() == o.Name })
		if i >= 0 {
			out.Outlets = append(out.Outlets, owned.Outlets[i])
			inline[o.Name] = owned.Outlets[i].Allow != ""
			continue
		}
		out.Outlets = append(out.Outlets, config.Outlet{Name: o.Name, To: o.Target})
	}
	for _, in := range n.portals.inletList() {
		i := slices.IndexFunc(owned.Inlets, func(d config.Inlet) bool { return d.Key() == in.Name || d.Key() == in.Listen })
		if i >= 0 {
			out.Inlets = append(out.Inlets, owned.Inlets[i])
			inline[in.Name] = owned.Inlets[i].Allow != ""
			continue
		}
		d := config.Inlet{From: in.Name, To: in.Route}
		if in.Tun != "" {
			d.Tun, d.Raw, d.HostsFile = true, in.Raw, in.HostsFile
		}
		out.Inlets = append(out.Inlets, d)
	}
	if p := n.project.Load(); p != nil && !p.hub {
		names, err := n.state.Relays(ctx)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			out.Relays = append(out.Relays, config.Relay{Name: name})
		}
	}
	ps, err := n.state.Policies(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		switch {
		case p.Kind == "type":
			out.Policies = append(out.Policies, config.Policy{Type: p.Resource, Allow: p.Expression})
		case !inline[p.Resource]:
			out.Policies = append(out.Policies, config.Policy{Name: p.Resource, Allow: p.Expression})
		}
	}
	return out, nil
}

// watchReload applies the config file again on every signal of the service manager (SIGHUP).
func (n *Node) watchReload(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.cfg.Reload:
			_, err := n.reloadConfig(ctx)
			if err == nil {
				err = n.applySocketGroup()
			}
			if err != nil {
				n.log.Error("config reload", "err", err)
			}
		}
	}
}

// startConfig applies the config file at start; an invalid file stops the node.
func (n *Node) startConfig(ctx context.Context) error {
	if n.cfg.ConfigFile == "" {
		return nil
	}
	c, err := n.readConfig()
	if err != nil {
		return err
	}
	if _, err := n.applyConfig(ctx, c); err != nil {
		var se *statusError
		if errors.As(err, &se) && strings.Contains(err.Error(), "applied in part") {
			n.log.Error("config applied in part", "err", err) // the rest runs; a reload retries
		} else {
			return err
		}
	}
	if n.cfg.Reload != nil {
		go n.watchReload(ctx)
	}
	return nil
}
