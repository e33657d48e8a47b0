package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scraped is one scrape of a node's metrics, parsed by the Prometheus text parser.
type scraped map[string]*dto.MetricFamily

func scrape(t *testing.T, addr string) scraped {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s\n%s", addr, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the metrics of %s: %v", addr, err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels include labels
// ("name=value" pairs), or -1 if there is none.
func (s scraped) value(name string, labels ...string) float64 {
	f := s[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return -1
}

// echoThrough sends n random bytes through the inlet at addr and checks they come back,
// retrying the connection while the path is being built.
func echoThrough(t *testing.T, addr string, n int) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			last = err
			continue
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		go c.Write(data)
		got := make([]byte, n)
		_, err = io.ReadFull(c, got)
		c.Close()
		if err != nil {
			last = err
			continue
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("the echo through %s differs from what was sent", addr)
		}
		return
	}
	t.Fatalf("no echo through %s after 20s: %v", addr, last)
}

// TestMetrics: a node started with --metrics serves Prometheus text that the Prometheus
// parser reads; its portal counters move with a byte stream through an inlet and an outlet,
// and refusals show up by reason (a policy at the outlet, a handshake without credential).
func TestMetrics(t *testing.T) {
	hubM, bankM, anaM := freePort(t), freePort(t), freePort(t)
	h, bank, analysis := newHome(t), newHome(t), newHome(t)
	mustCLI(t, "--home", h, "node", "create", "--metrics", hubM)
	mustCLI(t, "--home", h, "project", "create", "acme", "--listen", freePort(t))
	mustCLI(t, "--home", bank, "node", "create", "--metrics", bankM)
	mustCLI(t, "--home", bank, "enroll", strings.TrimSpace(mustCLI(t, "--home", h, "project", "ticket", "--relay", "postgres")))
	mustCLI(t, "--home", bank, "relay", "create", "postgres")
	anaListen := freePort(t)
	mustCLI(t, "--home", analysis, "node", "create", "--metrics", anaM, "--listen", anaListen)
	mustCLI(t, "--home", analysis, "enroll", strings.TrimSpace(mustCLI(t, "--home", h, "project", "ticket")))

	mustCLI(t, "--home", bank, "tcp-outlet", "create", "--to", echoServer(t), "--from", "db")
	mustCLI(t, "--home", bank, "tcp-outlet", "create", "--to", echoServer(t), "--from", "closed", "--allow", `(= subject.role "nobody")`)
	inlet, closed := freePort(t), freePort(t)
	mustCLI(t, "--home", analysis, "tcp-inlet", "create", "--from", inlet, "--via", "postgres", "--to", "db")
	mustCLI(t, "--home", analysis, "tcp-inlet", "create", "--from", closed, "--via", "postgres", "--to", "closed", "--no-wait") // its outlet refuses this node: that is what is counted

	before := scrape(t, anaM)
	for _, m := range []string{"go_goroutines", "process_resident_memory_bytes", "adjacent_credential_expiry_timestamp_seconds"} {
		if before.value(m) <= 0 {
			t.Errorf("%s = %v, want a positive value", m, before.value(m))
		}
	}
	if v := before.value("adjacent_credential_expiry_timestamp_seconds"); v < float64(time.Now().Unix()) {
		t.Errorf("credential expiry %v is in the past", v)
	}

	const n = 1 << 20
	echoThrough(t, inlet, n)
	in, out := scrape(t, anaM), scrape(t, bankM)
	for _, c := range []struct {
		s      scraped
		name   string
		labels []string
		min    float64
	}{
		{in, "adjacent_inlet_bytes_total", []string{"inlet=" + inlet, "direction=in"}, n},
		{in, "adjacent_inlet_bytes_total", []string{"inlet=" + inlet, "direction=out"}, n},
		{in, "adjacent_inlet_sessions_total", []string{"inlet=" + inlet}, 1},
		{in, "adjacent_inlet_path_up", []string{"inlet=" + inlet}, 1},
		{in, "adjacent_handshakes_completed_total", []string{"role=initiator"}, 2}, // the hub, the bank
		{in, "adjacent_secure_channels_open", nil, 2},
		{in, "adjacent_transport_bytes_total", []string{"direction=out"}, n},
		{out, "adjacent_outlet_bytes_total", []string{"outlet=db", "direction=in"}, n},
		{out, "adjacent_outlet_bytes_total", []string{"outlet=db", "direction=out"}, n},
		{out, "adjacent_outlet_sessions_total", []string{"outlet=db"}, 1},
		{out, "adjacent_handshakes_completed_total", []string{"role=responder"}, 1},
		{out, "adjacent_relays_held", nil, 1},
	} {
		if v := c.s.value(c.name, c.labels...); v < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}
	if v := before.value("adjacent_inlet_bytes_total", "inlet="+inlet, "direction=in"); v != 0 {
		t.Errorf("inlet bytes in before any traffic = %v, want 0", v)
	}

	// The outlet's policy refuses the closed inlet's connections.
	if v := out.value("adjacent_refusals_total", "reason=policy"); v != 0 {
		t.Fatalf("policy refusals before any = %v, want 0", v)
	}
	if c, err := net.Dial("tcp", closed); err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c) // closed or reset once refused
		c.Close()
	}
	waitMetric(t, bankM, "adjacent_refusals_total", []string{"reason=policy"}, 1)
	waitMetric(t, bankM, "adjacent_outlet_refusals_total", []string{"outlet=closed", "reason=policy"}, 1)

	// A node outside the project opens a channel to analysis's listener, which wants a
	// credential of the project: refused for its credential.
	if _, _, code := cli(t, "--home", newHome(t), "secure-channel", "create", "--to", "/ip4/127.0.0.1/tcp/"+port(anaListen)+"/service/api", "--timeout", "5s"); code == 0 {
		t.Fatal("a node outside the project opened a channel to a member's listener")
	}
	waitMetric(t, anaM, "adjacent_handshakes_failed_total", []string{"role=responder", "reason=credential"}, 1)
	waitMetric(t, anaM, "adjacent_refusals_total", []string{"reason=credential"}, 1)

	hub := scrape(t, hubM)
	if v := hub.value("adjacent_hub_members", "project=acme"); v < 2 {
		t.Errorf("hub members = %v, want at least 2", v)
	}
	if v := hub.value("adjacent_hub_relays"); v != 1 {
		t.Errorf("hub relays = %v, want 1", v)
	}

	// The address is remembered: the node started again without --metrics serves them.
	mustCLI(t, "--home", bank, "node", "stop")
	mustCLI(t, "--home", bank, "node", "create")
	if v := scrape(t, bankM).value("adjacent_outlet_sessions_total", "outlet=db"); v != 0 {
		t.Errorf("a restarted outlet's sessions = %v, want 0", v)
	}
	mustCLI(t, "--home", bank, "node", "stop")
	mustCLI(t, "--home", bank, "node", "create", "--metrics", "off")
	if _, err := http.Get("http://" + bankM + "/metrics"); err == nil {
		t.Error("metrics still served after --metrics off")
	}
}

func port(hostPort string) string {
	_, p, _ := net.SplitHostPort(hostPort)
	return p
}

// waitMetric waits until the node's metric reaches min.
func waitMetric(t *testing.T, addr, name string, labels []string, min float64) {
	t.Helper()
	var v float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if v = scrape(t, addr).value(name, labels...); v >= min {
			return
		}
	}
	t.Fatalf("%s%v = %v after 10s, want at least %v", name, labels, v, min)
}

// TestMetricsRefusesPublicAddress: metrics have no authentication, so an address off
// loopback is refused, saying why and how to force it.
func TestMetricsRefusesPublicAddress(t *testing.T) {
	h := newHome(t)
	_, errOut, code := cli(t, "--home", h, "node", "create", "--metrics", "0.0.0.0:9100")
	if code == 0 || !strings.Contains(errOut, "not a loopback address") || !strings.Contains(errOut, "without authentication") || !strings.Contains(errOut, "--metrics-allow-public") {
		t.Fatalf("node create --metrics 0.0.0.0:9100: exit %d, %q; want a refusal saying why and naming --metrics-allow-public", code, errOut)
	}
	addr := "0.0.0.0:" + port(freePort(t))
	mustCLI(t, "--home", h, "node", "create", "--metrics", addr, "--metrics-allow-public")
	if scrape(t, "127.0.0.1:"+port(addr)).value("process_start_time_seconds") <= 0 {
		t.Error("no process metrics")
	}
}
