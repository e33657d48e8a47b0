package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/config"
	"github.com/adjacentnet/adjacent/control/policy"
	"github.com/adjacentnet/adjacent/control/state"
	"github.com/adjacentnet/adjacent/routing"
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

// configApplier applies the declarative config: it reads the file, compares it with the
// one applied last and makes the difference with the node's ordinary create and delete
// calls (configTarget), remembers what the file owns, tells the file's resources apart in a
// status, and writes the node's state back as a config. Its data: the file, the state
// database (the applied config, relays, policies) and the node's live portals.
type configApplier struct {
	cfg     configApplierConfig
	mu      sync.Mutex                    // serialises applies
	applied atomic.Pointer[config.Config] // the config applied last; nil before the first
}

// configApplierConfig is what the config applier needs of the node.
type configApplierConfig struct {
	File     string          // Config.ConfigFile; "" for none
	Reload   <-chan struct{} // Config.Reload
	LogLevel *slog.LevelVar  // set from the file's log_level, if any
	Project  *membership     // the project the node is in, if any
	State    configStore     // the applied config, relays and policies
	Node     configTarget    // the node's create and delete calls
	Portals  configPortals   // the live inlets and outlets
	Applied  func() error    // after each reload: the API socket's group
	Logger   *slog.Logger
	Now      func() time.Time
}

// configStore is the part of the state database the config applier reads and writes.
type configStore interface {
	Setting(ctx context.Context, key string) (string, bool, error)
	SetSetting(ctx context.Context, key, value string) error
	Relays(ctx context.Context) ([]string, error)
	AddRelay(ctx context.Context, name string, created int64) error
	Policies(ctx context.Context) ([]state.Policy, error)
}

// configTarget is the node's ordinary create and delete calls, which a config's
// difference becomes.
type configTarget interface {
	createProject(ctx context.Context, req api.CreateProject) (api.Project, error)
	enroll(ctx context.Context, ticket string) (api.Project, error)
	setPolicy(ctx context.Context, kind, resource, expr string) (*policy.Policy, error)
	deletePolicy(ctx context.Context, kind, resource string) error
	createRelay(ctx context.Context, name string) (api.Relay, error)
	deleteRelay(ctx context.Context, name string) error
	createOutlet(ctx context.Context, req api.CreateOutlet) (api.Outlet, error)
	deleteOutlet(ctx context.Context, name string) error
	createInlet(ctx context.Context, req api.CreateInlet) (api.Inlet, error)
	deleteInlet(ctx context.Context, name string) error
	inletRoute(req api.CreateInlet) (routing.Path, error)
}

// configPortals is what the config applier reads of the live portals (type portals).
type configPortals interface {
	outletTarget(name string) (string, bool)
	inletNamed(key string) (state.Inlet, bool)
	outletList() []api.Outlet
	inletList() []api.Inlet
}

// readConfig reads and validates the node's config file.
func (a *configApplier) readConfig() (*config.Config, error) {
	b, err := os.ReadFile(a.cfg.File)
	if err != nil {
		return nil, fmt.Errorf("config: %w; check the path given to --config", err)
	}
	return config.Decode(a.cfg.File, b)
}

// loadApplied returns the config applied by an earlier run, or nil.
func (a *configApplier) loadApplied(ctx context.Context) *config.Config {
	text, ok, err := a.cfg.State.Setting(ctx, settingConfig)
	if err != nil || !ok {
		return nil
	}
	c, err := config.Decode("(applied config)", []byte(text))
	if err != nil {
		a.cfg.Logger.Warn("the config applied last does not decode; treating every resource as new", "err", err)
		return nil
	}
	return c
}

// owned returns the config the node applied last, or nil.
func (a *configApplier) owned() *config.Config {
	return a.applied.Load()
}

// reload reads the config file again and applies it. An invalid file changes nothing.
func (a *configApplier) reload(ctx context.Context) (api.ConfigApplied, error) {
	if a.cfg.File == "" {
		return api.ConfigApplied{}, badRequest(errors.New("reload: this node runs without a config file; start it with: adjacent node run --config FILE"))
	}
	daemon.SdNotify(false, daemon.SdNotifyReloading)
	defer daemon.SdNotify(false, daemon.SdNotifyReady)
	c, err := a.readConfig()
	if err != nil {
		a.cfg.Logger.Error("config refused; the running state is kept", "err", err)
		return api.ConfigApplied{File: a.cfg.File}, badRequest(err)
	}
	return a.apply(ctx, c)
}

// apply makes the node what c declares. Failures of single resources (a port in use,
// a hub that does not answer) are reported and the rest applied; what failed to be created
// is not recorded as owned, so the next reload tries again.
func (a *configApplier) apply(ctx context.Context, c *config.Config) (api.ConfigApplied, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	res := api.ConfigApplied{File: a.cfg.File}
	var errs []error
	fail := func(what string, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
	}
	if a.cfg.LogLevel != nil && c.LogLevel != "" {
		a.cfg.LogLevel.UnmarshalText([]byte(c.LogLevel))
	}
	if err := a.applyProject(ctx, c); err != nil {
		return res, err
	}
	prev := a.applied.Load()
	if prev == nil {
		prev = a.loadApplied(ctx)
	}
	d := config.Compare(prev, c)
	applied := *c
	applied.Relays, applied.Outlets, applied.Inlets, applied.Policies = nil, nil, nil, nil

	// Policies first, so new inlets and outlets are guarded from their first session.
	for _, p := range d.Policies.Delete {
		kind, resource := p.Kind()
		if err := a.cfg.Node.deletePolicy(ctx, kind, resource); err != nil {
			fail("policy "+p.Key(), err)
		}
		res.Deleted = append(res.Deleted, "policy "+p.Key())
	}
	for _, group := range [][]config.Policy{d.Policies.Keep, d.Policies.Replace, d.Policies.Create} {
		for _, p := range group {
			kind, resource := p.Kind()
			if _, err := a.cfg.Node.setPolicy(ctx, kind, resource, p.Allow); err != nil {
				fail("policy "+p.Key(), err)
				continue
			}
			applied.Policies = append(applied.Policies, p)
		}
	}
	res.Created, res.Replaced = appendKeys(res.Created, d.Policies.Create, "policy ", config.Policy.Key), appendKeys(res.Replaced, d.Policies.Replace, "policy ", config.Policy.Key)

	// Relays.
	for _, r := range d.Relays.Delete {
		if err := a.cfg.Node.deleteRelay(ctx, r.Name); err != nil {
			fail("relay "+r.Name, err)
		}
		res.Deleted = append(res.Deleted, "relay "+r.Name)
	}
	for _, group := range [][]config.Relay{d.Relays.Keep, d.Relays.Create} {
		for _, r := range group {
			if err := a.ensureRelay(ctx, r.Name); err != nil {
				fail("relay "+r.Name, err)
				continue
			}
			applied.Relays = append(applied.Relays, r)
		}
	}
	res.Created = appendKeys(res.Created, d.Relays.Create, "relay ", func(r config.Relay) string { return r.Name })

	// Outlets: gone, then changed, then new; unchanged ones only if they are missing.
	for _, o := range d.Outlets.Delete {
		if err := a.cfg.Node.deleteOutlet(ctx, o.Key()); err != nil {
			fail("outlet "+o.Key(), err)
		}
		a.dropInlinePolicy(ctx, o.Key(), o.Allow, c)
		res.Deleted = append(res.Deleted, "outlet "+o.Key())
	}
	for _, o := range d.Outlets.Replace {
		a.cfg.Node.deleteOutlet(ctx, o.Key())
		a.dropInlinePolicy(ctx, o.Key(), "x", c)
	}
	for _, group := range [][]config.Outlet{d.Outlets.Keep, d.Outlets.Replace, d.Outlets.Create} {
		for _, o := range group {
			if err := a.ensureOutlet(ctx, o); err != nil {
				fail("outlet "+o.Key(), err)
				continue
			}
			applied.Outlets = append(applied.Outlets, o)
		}
	}
	res.Created, res.Replaced = appendKeys(res.Created, d.Outlets.Create, "outlet ", config.Outlet.Key), appendKeys(res.Replaced, d.Outlets.Replace, "outlet ", config.Outlet.Key)

	// Inlets likewise.
	for _, in := range d.Inlets.Delete {
		if err := a.cfg.Node.deleteInlet(ctx, in.Key()); err != nil {
			fail("inlet "+in.Key(), err)
		}
		a.dropInlinePolicy(ctx, a.inletName(in.Key()), in.Allow, c)
		res.Deleted = append(res.Deleted, "inlet "+in.Key())
	}
	for _, in := range d.Inlets.Replace {
		a.cfg.Node.deleteInlet(ctx, in.Key())
		a.dropInlinePolicy(ctx, a.inletName(in.Key()), "x", c)
	}
	for _, group := range [][]config.Inlet{d.Inlets.Keep, d.Inlets.Replace, d.Inlets.Create} {
		for _, in := range group {
			if err := a.ensureInlet(ctx, in); err != nil {
				fail("inlet "+in.Key(), err)
				continue
			}
			applied.Inlets = append(applied.Inlets, in)
		}
	}
	res.Created, res.Replaced = appendKeys(res.Created, d.Inlets.Create, "inlet ", config.Inlet.Key), appendKeys(res.Replaced, d.Inlets.Replace, "inlet ", config.Inlet.Key)

	if b, err := config.Marshal(&applied); err == nil {
		if err := a.cfg.State.SetSetting(ctx, settingConfig, string(b)); err != nil {
			fail("remember the applied config", err)
		}
	}
	a.applied.Store(&applied)
	for _, e := range errs {
		res.Errors = append(res.Errors, e.Error())
	}
	a.cfg.Logger.Info("config applied", "file", a.cfg.File, "created", res.Created, "deleted", res.Deleted, "replaced", res.Replaced, "errors", len(res.Errors))
	if len(errs) > 0 {
		return res, badRequest(fmt.Errorf("config %s applied in part: %w", a.cfg.File, errors.Join(errs...)))
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
func (a *configApplier) applyProject(ctx context.Context, c *config.Config) error {
	p := a.cfg.Project.Load()
	switch {
	case c.Hub != nil && p != nil && (p.name != c.Hub.Project || !p.hub):
		return badRequest(&config.Error{File: a.cfg.File, Line: c.Hub.Line, Reason: fmt.Sprintf("hub: this node is already in project %s; use another home for another project", p.name)})
	case c.Hub != nil && p == nil:
		_, err := a.cfg.Node.createProject(ctx, api.CreateProject{Name: c.Hub.Project, Listen: c.Hub.Listen, PublicAddress: c.Hub.PublicAddress, Lifetime: time.Duration(c.Hub.CredentialLifetime)})
		if err != nil {
			return fmt.Errorf("%s:%d: %w", a.cfg.File, c.Hub.Line, err)
		}
	case c.Enroll != nil && p == nil:
		if _, err := a.cfg.Node.enroll(ctx, c.Enroll.Ticket); err != nil {
			return fmt.Errorf("%s:%d: enroll with %s: %w", a.cfg.File, c.Enroll.Line, c.Enroll.Ticket, err)
		}
	}
	return nil
}

// dropInlinePolicy deletes the name policy an outlet's or inlet's allow: made, unless the
// new file declares it as a policy of its own.
func (a *configApplier) dropInlinePolicy(ctx context.Context, name, allow string, c *config.Config) {
	if allow == "" || slices.ContainsFunc(c.Policies, func(p config.Policy) bool { return p.Name == name }) {
		return
	}
	a.cfg.Node.deletePolicy(ctx, "name", name)
}

// ensureRelay holds a relay at the hub. A member whose hub does not answer remembers it,
// and registers it when the session comes up.
func (a *configApplier) ensureRelay(ctx context.Context, name string) error {
	if p := a.cfg.Project.Load(); p != nil && !p.hub {
		if names, err := a.cfg.State.Relays(ctx); err == nil && slices.Contains(names, name) {
			return nil // held; registered again whenever the session to the hub comes up
		}
	}
	_, err := a.cfg.Node.createRelay(ctx, name)
	if err != nil && (errors.Is(err, errHubDown) || errors.Is(err, context.DeadlineExceeded)) {
		if p := a.cfg.Project.Load(); p != nil && !p.hub {
			a.cfg.Logger.Warn("relay kept for when the hub answers", "name", name, "err", err)
			return a.cfg.State.AddRelay(ctx, name, a.cfg.Now().Unix())
		}
	}
	return err
}

// ensureOutlet makes the outlet o declares, adopting a live one made the same way.
func (a *configApplier) ensureOutlet(ctx context.Context, o config.Outlet) error {
	target, _ := config.HostPort(o.To)
	if live, ok := a.cfg.Portals.outletTarget(o.Key()); ok {
		if live == target {
			if o.Allow != "" {
				_, err := a.cfg.Node.setPolicy(ctx, "name", o.Key(), o.Allow)
				return err
			}
			return nil
		}
		if err := a.cfg.Node.deleteOutlet(ctx, o.Key()); err != nil {
			return err
		}
	}
	_, err := a.cfg.Node.createOutlet(ctx, api.CreateOutlet{Name: o.Key(), To: o.To, Allow: o.Allow})
	return err
}

// ensureInlet makes the inlet in declares, adopting a live one with the same route. It does
// not wait for the inlet's path: the file declares what should be, and the outlet may come
// later (an inlet's refusals show in status).
func (a *configApplier) ensureInlet(ctx context.Context, in config.Inlet) error {
	req := api.CreateInlet{From: in.From, Via: in.Via, To: in.To, Allow: in.Allow, Tun: in.Tun, Raw: in.Raw, HostsFile: in.HostsFile, AddressRange: in.AddressRange, NoWait: true}
	route, err := a.cfg.Node.inletRoute(req)
	if err != nil {
		return err
	}
	if live, ok := a.cfg.Portals.inletNamed(in.Key()); ok {
		if live.Route == route.String() && live.Tun == in.Tun && live.Raw == in.Raw {
			if in.Allow != "" {
				_, err := a.cfg.Node.setPolicy(ctx, "name", live.Name, in.Allow)
				return err
			}
			return nil
		}
		if err := a.cfg.Node.deleteInlet(ctx, live.Name); err != nil {
			return err
		}
	}
	_, err = a.cfg.Node.createInlet(ctx, req)
	return err
}

// inletName is the name the node gives the inlet listening at key.
func (a *configApplier) inletName(key string) string {
	if in, ok := a.cfg.Portals.inletNamed(key); ok {
		return in.Name
	}
	return key
}

// markOrigin tells the file's resources in a status apart from those made with the CLI.
func (a *configApplier) markOrigin(st api.Status) api.Status {
	c := a.owned()
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

// effective is the node's state as a config: the file's declarations as written, and
// what the CLI made in the form the CLI takes. Decode accepts it.
func (a *configApplier) effective(ctx context.Context) (*config.Config, error) {
	out := &config.Config{}
	owned := a.owned()
	if owned != nil {
		out.Hub, out.Enroll, out.APISocket, out.LogLevel, out.Metrics = owned.Hub, owned.Enroll, owned.APISocket, owned.LogLevel, owned.Metrics
	} else {
		owned = &config.Config{}
	}
	if p := a.cfg.Project.Load(); p != nil && p.hub && out.Hub == nil {
		out.Hub = &config.Hub{Project: p.name}
	}
	inline := map[string]bool{}
	for _, o := range a.cfg.Portals.outletList() {
		i := slices.IndexFunc(owned.Outlets, func(d config.Outlet) bool { return d.Key() == o.Name })
		if i >= 0 {
			out.Outlets = append(out.Outlets, owned.Outlets[i])
			inline[o.Name] = owned.Outlets[i].Allow != ""
			continue
		}
		out.Outlets = append(out.Outlets, config.Outlet{Name: o.Name, To: o.Target})
	}
	for _, in := range a.cfg.Portals.inletList() {
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
	if p := a.cfg.Project.Load(); p != nil && !p.hub {
		names, err := a.cfg.State.Relays(ctx)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			out.Relays = append(out.Relays, config.Relay{Name: name})
		}
	}
	ps, err := a.cfg.State.Policies(ctx)
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
func (a *configApplier) watchReload(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.cfg.Reload:
			_, err := a.reload(ctx)
			if err == nil {
				err = a.cfg.Applied()
			}
			if err != nil {
				a.cfg.Logger.Error("config reload", "err", err)
			}
		}
	}
}

// start applies the config file at start; an invalid file stops the node.
func (a *configApplier) start(ctx context.Context) error {
	if a.cfg.File == "" {
		return nil
	}
	c, err := a.readConfig()
	if err != nil {
		return err
	}
	if _, err := a.apply(ctx, c); err != nil {
		var se *statusError
		if errors.As(err, &se) && strings.Contains(err.Error(), "applied in part") {
			a.cfg.Logger.Error("config applied in part", "err", err) // the rest runs; a reload retries
		} else {
			return err
		}
	}
	if a.cfg.Reload != nil {
		go a.watchReload(ctx)
	}
	return nil
}
