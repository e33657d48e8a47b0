package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/home"
	"github.com/adjacentnet/adjacent/control/state"
	"github.com/adjacentnet/adjacent/control/vault"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/routing/tcp"
	"github.com/adjacentnet/adjacent/securechannel"
)

// Config configures a node.
type Config struct {
	Home home.Home
	// Listen is the TCP address to accept connections on. Empty means the address stored
	// by an earlier run, if any; a node without one only dials out.
	Listen string
	// Identity names the identity the node runs as; empty means the one of an earlier run,
	// or a new "default" identity.
	Identity string
	Logger   *slog.Logger     // default slog.Default()
	TCP      tcp.Config       // transport tuning; its Logger defaults to Logger
	Caps     Caps             // what remote peers can make the node hold
	Now      func() time.Time // default time.Now

	// Metrics is the address to serve Prometheus metrics on (metrics.go): empty means the
	// one remembered from an earlier run, if any; MetricsOff none. Only loopback addresses,
	// unless MetricsAllowPublic.
	Metrics            string
	MetricsAllowPublic bool
	// ConfigFile is the declarative config (control/config) applied at start and again on
	// each receive from Reload and on POST /v1/config/reload; empty means none.
	ConfigFile string
	Reload     <-chan struct{}
	LogLevel   *slog.LevelVar // set from the config's log_level, if any
	// Rehandshake is how old a channel's keys get before the initiator replaces them with
	// a fresh handshake; default securechannel's (1h). Soak and fault tests shorten it.
	Rehandshake time.Duration
}

// Node is a running node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	state    *state.Store
	vault    *vault.Vault
	self     *self
	ids      *identityStore  // the home's identities
	router   *routing.Router // holds the transports, by address type (routing.Router.Transport)
	listener *securechannel.Listener
	admit    *admission // the listener's caps per identity
	channels channels
	policies policies
	project  membership // the project, if any, and what trust reads off it
	portals  *portals
	recheck  recheck // re-checks live portal sessions against their policies (livepolicy.go)
	counts   counts  // handshakes and refusals, for metrics

	config   *configApplier // the declarative config (configapply.go)
	apiGroup atomic.Int64   // the API socket's group (api_socket.group), or -1

	// The node's roles (doc.go has the map); wireRoles makes them.
	revocations *revocations      // control events, revoked members
	credentials *credentialKeeper // the node's credential, its peers' expiry
	histories   *histories        // peers' and the authority's rotated identities
	rotator     *rotator          // identity key rotation

	listenerMu sync.Mutex // serialises listener restarts
	started    time.Time
	listenMu   sync.Mutex
	listen     []string // addresses the transport listens on; listenMu
	stop       context.CancelFunc
	ctx        context.Context // the node's life, for background work
}

// Setting keys in the state database.
const settingListen = "listen"

// Run runs the node until ctx ends or a client asks it to stop. It holds the home's lock
// for its whole life, so a second node on the same home fails with ErrRunning.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TCP.Logger == nil {
		cfg.TCP.Logger = cfg.Logger
	}
	cfg.Caps.setDefaults()
	h := cfg.Home
	if err := h.Ensure(); err != nil {
		return err
	}
	lk, err := acquireLock(h)
	if err != nil {
		return err
	}
	defer lk.release()

	st, err := state.Open(h.State())
	if err != nil {
		return err
	}
	defer st.Close()

	v, err := vault.Open(h.Vault())
	if err != nil {
		return err
	}
	defer v.Close()

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	n := &Node{cfg: cfg, log: cfg.Logger, state: st, vault: v, started: cfg.Now(), stop: stop, ctx: ctx}
	n.project.now = cfg.Now
	n.policies.member = n.member
	n.ids = &identityStore{state: st, vault: v, log: n.log, now: cfg.Now}
	if n.self, err = n.ids.loadSelf(ctx, cfg.Identity); err != nil {
		return err
	}
	n.admit = newAdmission(n)
	defer n.admit.refusals.Stop()
	n.router = routing.New(routing.Config{Logger: cfg.Logger})
	defer tcp.New(n.router, cfg.TCP).Close()
	n.portals = newPortals(portalsConfig{
		Router: n.router, Logger: n.log,
		Flow:                  func() routing.FlowID { return n.listener.Flow() },
		OutletSessionsPerPeer: cfg.Caps.OutletSessionsPerPeer,
		Policy:                n.policies.policyOf,
		Revoked:               func(m *routing.Message, resource string) bool { return n.revocations.revokedSender(m, resource) },
		Build:                 n.buildPath,
		Refused:               n.inletRefused,
	})
	n.wireRoles()
	defer n.revocations.stop()
	if err := n.histories.load(ctx); err != nil {
		return err
	}
	if err := n.policies.load(ctx, st); err != nil {
		return err
	}
	p, err := n.loadProject(ctx)
	if err != nil {
		return err
	}
	if p != nil {
		n.project.Store(p)
		if p.auth != nil {
			defer p.auth.Store().Close()
		}
	}
	n.listenerMu.Lock()
	err = n.startListenerLocked()
	n.listenerMu.Unlock()
	if err != nil {
		return err
	}
	defer func() { n.listener.Close() }()
	if err := n.restorePortals(ctx); err != nil {
		return err
	}
	defer n.portals.close()
	if err := n.router.Register(eventsWorker, routing.WorkerFunc(n.revocations.handleEvent)); err != nil {
		return err
	}
	go n.credentials.run(ctx)
	go n.recheck.run(ctx, func() { n.portals.recheck() })
	if p != nil && !p.hub {
		go n.runSession(ctx, p)
	}
	if err := n.startListening(ctx); err != nil {
		return err
	}
	if err := n.config.start(ctx); err != nil {
		return err
	}

	stopMetrics, err := serveMetrics(ctx, metricsConfig{
		Addr: cfg.Metrics, AllowPublic: cfg.MetricsAllowPublic, Settings: st, Logger: n.log,
		Sources: metricsSources{
			Counts: &n.counts, Portals: n.portals, Project: &n.project, Relays: st.Relays, Context: ctx,
			AdmissionRefused: func() uint64 { _, _, refused := n.admit.counts(); return refused },
			Listener: func() (ls securechannel.ListenerStats) {
				n.listenerMu.Lock()
				defer n.listenerMu.Unlock()
				if n.listener != nil {
					ls = n.listener.Stats()
				}
				return ls
			},
			Channels:  func() int { return len(n.channels.list()) },
			Transport: n.router.Transport(routing.TypeTCP).Stats,
		},
	})
	if err != nil {
		return err
	}
	defer stopMetrics()

	n.apiGroup.Store(-1)
	apiLn, err := listenAPI(h, &n.apiGroup)
	if err != nil {
		return err
	}
	if err := n.applySocketGroup(); err != nil {
		apiLn.Close()
		return err
	}
	srv := &http.Server{Handler: n.handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(apiLn) }()
	if err := home.WriteFile(h.Pid(), []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
		return fmt.Errorf("node: write pid: %w", err)
	}
	n.log.Info("node started", "home", h.Dir, "identifier", n.self.history.Identifier(), "listen", n.listenAddrs(), "pid", os.Getpid())
	notifyReady(ctx, h, n.log)

	select {
	case <-ctx.Done():
	case err := <-served:
		n.log.Error("API server failed", "err", err)
	}
	notifyStopping(n.log)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	os.Remove(h.Socket())
	os.Remove(h.Pid())
	n.log.Info("node stopped", "home", h.Dir)
	return nil
}

// wireRoles makes the node's roles, each with the parts of the node it reads and calls.
// They may call each other and the router, listener and portals only once Run has made
// those.
func (n *Node) wireRoles() {
	self, now := n.self.history.Identifier(), n.cfg.Now
	n.revocations = newRevocations(revocationsConfig{
		Project: &n.project, Self: self, Channels: n.channels.list,
		Send:    func(m *routing.Message) { n.router.Send(m) },
		Refresh: func(p *project) { n.credentials.refreshNow(p) },
		Logger:  n.log, Now: now,
	})
	n.credentials = &credentialKeeper{credentialKeeperConfig{
		Project: &n.project, Self: self, Channels: n.channels.list,
		Settings: n.state, Context: n.ctx, Logger: n.log, Now: now,
	}}
	n.histories = &histories{cfg: historiesConfig{Project: &n.project, Self: self, Store: n.state, Logger: n.log}}
	n.config = &configApplier{cfg: configApplierConfig{
		File: n.cfg.ConfigFile, Reload: n.cfg.Reload, LogLevel: n.cfg.LogLevel,
		Project: &n.project, State: n.state, Node: n, Portals: n.portals,
		Applied: n.applySocketGroup, Logger: n.log, Now: now,
	}}
	n.rotator = &rotator{cfg: rotatorConfig{
		Self: n.self, Project: &n.project, State: n.state, Vault: n.vault,
		Open: n.ids.open,
		Rekey: func(p *project) {
			n.listenerMu.Lock()
			defer n.listenerMu.Unlock()
			if n.listener != nil {
				cfg := n.channelConfig(nil, p != nil && !p.hub)
				n.listener.SetKeys(cfg.Static, cfg.Auth)
			}
		},
		Refresh:  n.credentials.refresh,
		Channels: n.channels.list,
		Logger:   n.log, Now: now,
	}}
}

func (n *Node) startListening(ctx context.Context) error {
	addr := n.cfg.Listen
	if addr == "" {
		stored, _, err := n.state.Setting(ctx, settingListen)
		if err != nil {
			return err
		}
		addr = stored
	}
	if addr == "" {
		return nil
	}
	l, err := n.listenTCP(addr)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.addListen(l.Addr().String())
	if n.cfg.Listen != "" {
		return n.state.SetSetting(ctx, settingListen, n.cfg.Listen)
	}
	return nil
}

// listenTCP accepts connections at addr (host:port) with the node's TCP transport.
func (n *Node) listenTCP(addr string) (routing.Listener, error) {
	return n.router.Transport(routing.TypeTCP).Listen(addr)
}

// listenAPI binds the home's socket, owner-only. A stale socket from a crashed node is
// removed: the caller holds the home's lock, so no live node owns it. (PrepareSocket removes
// nothing but a socket, and checks the directory of one kept outside the home.)
func listenAPI(h home.Home, group *atomic.Int64) (net.Listener, error) {
	if err := h.PrepareSocket(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	ln, err := net.Listen("unix", h.Socket())
	if err != nil {
		return nil, fmt.Errorf("node: API socket: %w", err)
	}
	if err := os.Chmod(h.Socket(), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("node: API socket: %w", err)
	}
	return &peerCheckListener{ln.(*net.UnixListener), group}, nil
}

// listenAddrs returns the addresses the node listens on; the API may add one at any time.
func (n *Node) listenAddrs() []string {
	n.listenMu.Lock()
	defer n.listenMu.Unlock()
	return slices.Clone(n.listen)
}

func (n *Node) addListen(addr string) {
	n.listenMu.Lock()
	defer n.listenMu.Unlock()
	n.listen = append(n.listen, addr)
}

func (n *Node) removeListen(addr string) {
	n.listenMu.Lock()
	defer n.listenMu.Unlock()
	n.listen = slices.DeleteFunc(n.listen, func(a string) bool { return a == addr })
}
