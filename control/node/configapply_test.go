package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/config"
	"github.com/adjacentnet/adjacent/control/policy"
	"github.com/adjacentnet/adjacent/control/state"
	"github.com/adjacentnet/adjacent/routing"
)

// fakeConfigNode is a node as the config applier sees it: its calls are recorded, and
// outlets live in a map the applier reads back as the live portals.
type fakeConfigNode struct {
	calls    []string
	outlets  map[string]string // name -> target
	settings map[string]string
	failOn   string // a call that fails, e.g. "create outlet db"
}

func newFakeConfigNode() *fakeConfigNode {
	return &fakeConfigNode{outlets: map[string]string{}, settings: map[string]string{}}
}

func (f *fakeConfigNode) call(what string) error {
	f.calls = append(f.calls, what)
	if what == f.failOn {
		return errors.New("port in use")
	}
	return nil
}

func (f *fakeConfigNode) createProject(ctx context.Context, req api.CreateProject) (api.Project, error) {
	return api.Project{}, f.call("create project " + req.Name)
}
func (f *fakeConfigNode) enroll(ctx context.Context, ticket string) (api.Project, error) {
	return api.Project{}, f.call("enroll")
}
func (f *fakeConfigNode) setPolicy(ctx context.Context, kind, resource, expr string) (*policy.Policy, error) {
	return nil, f.call("set policy " + kind + " " + resource)
}
func (f *fakeConfigNode) deletePolicy(ctx context.Context, kind, resource string) error {
	return f.call("delete policy " + kind + " " + resource)
}
func (f *fakeConfigNode) createRelay(ctx context.Context, name string) (api.Relay, error) {
	return api.Relay{}, f.call("create relay " + name)
}
func (f *fakeConfigNode) deleteRelay(ctx context.Context, name string) error {
	return f.call("delete relay " + name)
}
func (f *fakeConfigNode) createOutlet(ctx context.Context, req api.CreateOutlet) (api.Outlet, error) {
	if err := f.call("create outlet " + req.Name); err != nil {
		return api.Outlet{}, err
	}
	f.outlets[req.Name], _ = config.HostPort(req.To)
	return api.Outlet{Name: req.Name}, nil
}
func (f *fakeConfigNode) deleteOutlet(ctx context.Context, name string) error {
	delete(f.outlets, name)
	return f.call("delete outlet " + name)
}
func (f *fakeConfigNode) createInlet(ctx context.Context, req api.CreateInlet) (api.Inlet, error) {
	return api.Inlet{}, f.call("create inlet " + req.From)
}
func (f *fakeConfigNode) deleteInlet(ctx context.Context, name string) error {
	return f.call("delete inlet " + name)
}
func (f *fakeConfigNode) inletRoute(req api.CreateInlet) (routing.Path, error) {
	return nil, errors.New("no inlets in this test")
}

// The live portals.
func (f *fakeConfigNode) outletTarget(name string) (string, bool) {
	t, ok := f.outlets[name]
	return t, ok
}
func (f *fakeConfigNode) inletNamed(key string) (state.Inlet, bool) { return state.Inlet{}, false }
func (f *fakeConfigNode) outletList() []api.Outlet {
	var out []api.Outlet
	for name, target := range f.outlets {
		out = append(out, api.Outlet{Name: name, Target: target})
	}
	return out
}
func (f *fakeConfigNode) inletList() []api.Inlet { return nil }

// The state database.
func (f *fakeConfigNode) Setting(ctx context.Context, key string) (string, bool, error) {
	v, ok := f.settings[key]
	return v, ok, nil
}
func (f *fakeConfigNode) SetSetting(ctx context.Context, key, value string) error {
	f.settings[key] = value
	return nil
}
func (f *fakeConfigNode) Relays(ctx context.Context) ([]string, error) { return nil, nil }
func (f *fakeConfigNode) AddRelay(ctx context.Context, name string, created int64) error {
	return nil
}
func (f *fakeConfigNode) Policies(ctx context.Context) ([]state.Policy, error) { return nil, nil }

func newTestApplier(f *fakeConfigNode) *configApplier {
	return &configApplier{cfg: configApplierConfig{
		File: "node.yaml", Project: &membership{now: time.Now},
		State: f, Node: f, Portals: f, Applied: func() error { return nil },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
	}}
}

func decodeConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	c, err := config.Decode("node.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Decode(%q) = %v", text, err)
	}
	return c
}

// TestConfigApplyMakesOnlyTheDifference: a file applied again touches nothing it declared
// unchanged, and a resource dropped from the file goes while one made with the CLI stays.
func TestConfigApplyMakesOnlyTheDifference(t *testing.T) {
	ctx := context.Background()
	f := newFakeConfigNode()
	a := newTestApplier(f)
	first := "outlets:\n  - name: db\n    to: 5432\n  - name: web\n    to: 8080\n"
	if _, err := a.apply(ctx, decodeConfig(t, first)); err != nil {
		t.Fatalf("apply = %v", err)
	}
	if want := []string{"create outlet db", "create outlet web"}; !slices.Equal(f.calls, want) {
		t.Fatalf("first apply made %q, want %q", f.calls, want)
	}
	f.outlets["cli"] = "127.0.0.1:9000" // made with the CLI

	f.calls = nil
	if _, err := a.apply(ctx, decodeConfig(t, first)); err != nil {
		t.Fatalf("apply again = %v", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("the same file applied again made %q, want nothing", f.calls)
	}

	f.calls = nil
	res, err := a.apply(ctx, decodeConfig(t, "outlets:\n  - name: web\n    to: 8081\n"))
	if err != nil {
		t.Fatalf("apply changed = %v", err)
	}
	// A replaced outlet's inline policy goes with it, unless the file declares it itself.
	if want := []string{"delete outlet db", "delete outlet web", "delete policy name web", "create outlet web"}; !slices.Equal(f.calls, want) {
		t.Errorf("changed file made %q, want %q", f.calls, want)
	}
	if !slices.Equal(res.Deleted, []string{"outlet db"}) || !slices.Equal(res.Replaced, []string{"outlet web"}) {
		t.Errorf("result deleted %q, replaced %q; want [outlet db], [outlet web]", res.Deleted, res.Replaced)
	}
	if _, ok := f.outlets["cli"]; !ok {
		t.Error("a reload deleted the outlet made with the CLI")
	}

	st := a.markOrigin(api.Status{Outlets: []api.Outlet{{Name: "web"}, {Name: "cli"}}})
	if st.Outlets[0].Origin != OriginConfig || st.Outlets[1].Origin != "" {
		t.Errorf("markOrigin: web %q, cli %q; want %q and none", st.Outlets[0].Origin, st.Outlets[1].Origin, OriginConfig)
	}
}

// TestConfigApplyFailureIsRetried: what failed to be created is reported, not recorded as
// the file's, and created by the next apply.
func TestConfigApplyFailureIsRetried(t *testing.T) {
	ctx := context.Background()
	f := newFakeConfigNode()
	f.failOn = "create outlet db"
	a := newTestApplier(f)
	file := "outlets:\n  - name: db\n    to: 5432\n  - name: web\n    to: 8080\n"
	res, err := a.apply(ctx, decodeConfig(t, file))
	if err == nil || len(res.Errors) != 1 {
		t.Fatalf("apply with a failing outlet = %v, errors %q; want one error", err, res.Errors)
	}
	if owned := a.owned(); len(owned.Outlets) != 1 || owned.Outlets[0].Key() != "web" {
		t.Fatalf("owned after a failure = %v, want only web", owned.Outlets)
	}
	if _, ok := f.settings[settingConfig]; !ok {
		t.Error("the applied config was not remembered in the state")
	}

	f.failOn, f.calls = "", nil
	if _, err := a.apply(ctx, decodeConfig(t, file)); err != nil {
		t.Fatalf("apply again = %v", err)
	}
	if want := []string{"create outlet db"}; !slices.Equal(f.calls, want) {
		t.Errorf("apply after the failure made %q, want %q", f.calls, want)
	}
}

// TestConfigAppliedLastSurvivesRestart: a new applier (a restarted node) reads what the
// file owned from the state, so it deletes what the file no longer declares.
func TestConfigAppliedLastSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	f := newFakeConfigNode()
	if _, err := newTestApplier(f).apply(ctx, decodeConfig(t, "outlets:\n  - name: db\n    to: 5432\n")); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	if _, err := newTestApplier(f).apply(ctx, decodeConfig(t, "log_level: info\n")); err != nil {
		t.Fatal(err)
	}
	if want := []string{"delete outlet db"}; !slices.Equal(f.calls, want) {
		t.Errorf("after a restart the emptier file made %q, want %q", f.calls, want)
	}
}
