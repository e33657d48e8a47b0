package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adjacentnet/adjacent/dataplane"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// Metrics: with Config.Metrics the node serves Prometheus text at http://ADDR/metrics. The
// collector reads, at scrape time, the counters the node and its packages keep anyway
// (dataplane.Counters, the listener's and transport's stats, the admission's and the
// node's counts): nothing on the data path knows about Prometheus.
//
// The address is remembered like --listen: a restarted node, or one started in the
// background by a later command, serves its metrics again; "off" forgets it.

// settingMetrics is the key of the remembered metrics address.
const settingMetrics = "metrics"

// MetricsOff, as Config.Metrics, serves no metrics and forgets the remembered address.
const MetricsOff = "off"

// CheckMetricsAddr refuses an address that is not on loopback unless allowPublic: the
// metrics are served without authentication and tell who is connected and how much flows.
func CheckMetricsAddr(addr string, allowPublic bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--metrics %q: want HOST:PORT, e.g. 127.0.0.1:9100", addr)
	}
	if allowPublic || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--metrics %q is not a loopback address: metrics are served without authentication and tell who is connected and how much flows; serve them on 127.0.0.1 or [::1] and scrape them from this machine, or add --metrics-allow-public to serve them there anyway", addr)
}

// metricsConfig is what the metrics server needs of the node.
type metricsConfig struct {
	Addr        string // Config.Metrics: "" for the remembered one, MetricsOff for none
	AllowPublic bool   // Config.MetricsAllowPublic
	Settings    interface {
		Setting(ctx context.Context, key string) (string, bool, error)
		SetSetting(ctx context.Context, key, value string) error
	}
	Sources metricsSources
	Logger  *slog.Logger
}

// metricsSources are the counters the collector reads at scrape time.
type metricsSources struct {
	Counts  *counts
	Portals interface {
		collect(inlet func(name string, st *dataplane.Counters, up bool), outlet func(name string, st *dataplane.Counters))
	}
	AdmissionRefused func() uint64                      // channels and relays over the caps per identity
	Listener         func() securechannel.ListenerStats // zero while the listener restarts
	Channels         func() int                         // secure channels open
	Transport        func() routing.TransportStats      // the TCP transport's
	Project          *membership
	Relays           func(ctx context.Context) ([]string, error) // those a member holds
	Context          context.Context                             // the node's life
}

// serveMetrics serves the metrics at the configured or remembered address, if any, and
// returns the function that stops it.
func serveMetrics(ctx context.Context, cfg metricsConfig) (stop func(), err error) {
	addr := cfg.Addr
	switch addr {
	case "":
		if addr, _, err = cfg.Settings.Setting(ctx, settingMetrics); err != nil {
			return nil, err
		}
	case MetricsOff:
		addr = ""
	default:
		if err := CheckMetricsAddr(addr, cfg.AllowPublic); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	if addr == "" {
		return func() {}, cfg.remember(ctx, "")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{cfg.Sources},
	)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("node: serve metrics on %s: %w; choose another port with --metrics, or turn them off with --metrics off", addr, err)
	}
	if err := cfg.remember(ctx, addr); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 4, Timeout: 10 * time.Second}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("metrics server failed", "err", err)
		}
	}()
	cfg.Logger.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { srv.Close() }, nil
}

// remember stores the metrics address given in the configuration, once it is known to
// work ("" to forget it); a remembered one stays as it is.
func (cfg *metricsConfig) remember(ctx context.Context, addr string) error {
	if cfg.Addr == "" {
		return nil
	}
	return cfg.Settings.SetSetting(ctx, settingMetrics, addr)
}

// collector is the node's prometheus.Collector. It describes nothing up front (an unchecked
// collector): its label values, the inlets and outlets, come and go.
type collector struct{ n metricsSources }

func (c *collector) Describe(chan<- *prometheus.Desc) {}

var (
	mBytes = map[string]*prometheus.Desc{
		"inlet":  prometheus.NewDesc("adjacent_inlet_bytes_total", "Bytes through an inlet: in, from local clients into the portal; out, back to them.", []string{"inlet", "direction"}, nil),
		"outlet": prometheus.NewDesc("adjacent_outlet_bytes_total", "Bytes through an outlet: in, from its target into the portal; out, to the target.", []string{"outlet", "direction"}, nil),
	}
	mActive = map[string]*prometheus.Desc{
		"inlet":  prometheus.NewDesc("adjacent_inlet_sessions_active", "Portal sessions open at an inlet.", []string{"inlet"}, nil),
		"outlet": prometheus.NewDesc("adjacent_outlet_sessions_active", "Portal sessions open at an outlet.", []string{"outlet"}, nil),
	}
	mTotal = map[string]*prometheus.Desc{
		"inlet":  prometheus.NewDesc("adjacent_inlet_sessions_total", "Portal sessions an inlet opened.", []string{"inlet"}, nil),
		"outlet": prometheus.NewDesc("adjacent_outlet_sessions_total", "Portal sessions an outlet opened.", []string{"outlet"}, nil),
	}
	mPolicyResets = map[string]*prometheus.Desc{
		"inlet":  prometheus.NewDesc("adjacent_inlet_policy_resets_total", "Live sessions of an inlet reset because the outlet's node no longer passed its policy.", []string{"inlet"}, nil),
		"outlet": prometheus.NewDesc("adjacent_outlet_policy_resets_total", "Live sessions of an outlet reset because their peer no longer passed its policy.", []string{"outlet"}, nil),
	}
	mInletUp         = prometheus.NewDesc("adjacent_inlet_path_up", "1 if the inlet's path to its outlet is up.", []string{"inlet"}, nil)
	mOutletRefusals  = prometheus.NewDesc("adjacent_outlet_refusals_total", "Connects an outlet refused, by reason: policy, or capacity (sessions per peer).", []string{"outlet", "reason"}, nil)
	mRefusals        = prometheus.NewDesc("adjacent_refusals_total", "What the node refused, by reason: policy (outlet connects, inlet paths), credential (peers' handshakes, inlet paths), capacity (outlet sessions, channels and relays per identity), path_down (inlet connections without a path to the outlet).", []string{"reason"}, nil)
	mHSStarted       = prometheus.NewDesc("adjacent_handshakes_started_total", "Secure-channel handshakes started, by role (a responder's start is a first message answered).", []string{"role"}, nil)
	mHSCompleted     = prometheus.NewDesc("adjacent_handshakes_completed_total", "Secure-channel handshakes completed, by role.", []string{"role"}, nil)
	mHSFailed        = prometheus.NewDesc("adjacent_handshakes_failed_total", "Secure-channel handshakes failed, by role and reason.", []string{"role", "reason"}, nil)
	mFirstRefused    = prometheus.NewDesc("adjacent_listener_first_messages_refused_total", "First handshake messages the listener dropped (rate, invalid cookie, table full), since it last started.", nil, nil)
	mFirstCookies    = prometheus.NewDesc("adjacent_listener_cookies_total", "First handshake messages the listener answered with a cookie under load, since it last started.", nil, nil)
	mChannels        = prometheus.NewDesc("adjacent_secure_channels_open", "Secure channels open, both roles.", nil, nil)
	mCredExpiry      = prometheus.NewDesc("adjacent_credential_expiry_timestamp_seconds", "When the node's project credential expires (Unix time).", []string{"project"}, nil)
	mHubRelays       = prometheus.NewDesc("adjacent_hub_relays", "Relays registered at this hub.", nil, nil)
	mRelaysHeld      = prometheus.NewDesc("adjacent_relays_held", "Relays this member registered at its hub.", nil, nil)
	mHubMembers      = prometheus.NewDesc("adjacent_hub_members", "Members of this hub's project.", []string{"project"}, nil)
	mConnections     = prometheus.NewDesc("adjacent_transport_connections", "TCP transport connections open.", nil, nil)
	mTransportBytes  = prometheus.NewDesc("adjacent_transport_bytes_total", "Bytes of TCP transport frames, by direction.", []string{"direction"}, nil)
	mTransportRefuse = prometheus.NewDesc("adjacent_transport_refused_total", "TCP transport connections closed for a protocol violation.", nil, nil)
)

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	portal := func(kind, name string, st *dataplane.Counters) {
		counter(mBytes[kind], float64(st.BytesIn.Load()), name, "in")
		counter(mBytes[kind], float64(st.BytesOut.Load()), name, "out")
		gauge(mActive[kind], float64(st.Active.Load()), name)
		counter(mTotal[kind], float64(st.Total.Load()), name)
		counter(mPolicyResets[kind], float64(st.PolicyResets.Load()), name)
	}

	refused := [numRefusals]float64{}
	for i := range refused {
		refused[i] = float64(n.Counts.refused[i].Load())
	}
	n.Portals.collect(func(name string, st *dataplane.Counters, pathUp bool) {
		portal("inlet", name, st)
		up := 0.0
		if pathUp {
			up = 1
		}
		gauge(mInletUp, up, name)
	}, func(name string, st *dataplane.Counters) {
		portal("outlet", name, st)
		counter(mOutletRefusals, float64(st.Denied.Load()), name, "policy")
		counter(mOutletRefusals, float64(st.Refused.Load()), name, "capacity")
		refused[refusePolicy] += float64(st.Denied.Load())
		refused[refuseCapacity] += float64(st.Refused.Load())
	})
	refused[refuseCapacity] += float64(n.AdmissionRefused())
	for i, v := range refused {
		counter(mRefusals, v, refusalNames[i])
	}

	ls := n.Listener()
	for role := range 2 {
		started := float64(n.Counts.started[role].Load())
		if role == responder {
			started = float64(ls.Answered)
		}
		counter(mHSStarted, started, roleNames[role])
		counter(mHSCompleted, float64(n.Counts.completed[role].Load()), roleNames[role])
		for why := range numFailures {
			counter(mHSFailed, float64(n.Counts.failed[role][why].Load()), roleNames[role], failureNames[why])
		}
	}
	counter(mFirstRefused, float64(ls.Refused))
	counter(mFirstCookies, float64(ls.Cookies))
	gauge(mChannels, float64(n.Channels()))

	ts := n.Transport()
	gauge(mConnections, float64(ts.Connections))
	counter(mTransportBytes, float64(ts.BytesIn), "in")
	counter(mTransportBytes, float64(ts.BytesOut), "out")
	counter(mTransportRefuse, float64(ts.Refused))

	p := n.Project.Load()
	if p == nil {
		return
	}
	if b := p.cred.Load(); b != nil && b.Credential != nil {
		gauge(mCredExpiry, float64(b.Credential.Expires().Unix()), p.name)
	}
	ctx, cancel := context.WithTimeout(n.Context, 5*time.Second)
	defer cancel()
	if p.hub {
		gauge(mHubRelays, float64(len(p.relays.List())))
		if ms, err := p.auth.Store().Members(ctx); err == nil {
			gauge(mHubMembers, float64(len(ms)), p.name)
		} else {
			ch <- prometheus.NewInvalidMetric(mHubMembers, fmt.Errorf("read the members: %w", err))
		}
		return
	}
	if names, err := n.Relays(ctx); err == nil {
		gauge(mRelaysHeld, float64(len(names)))
	}
}
