package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// bench is one run: its tools, scratch directory and topologies.
type bench struct {
	cfg     config
	root    string // the module's directory
	out     string // absolute -out
	tmp     string // scratch: keys, configs, homes; removed at the end
	tools   *tools
	direct  direct
	relay   relay
	started time.Time

	// What lives for the whole run: a PostgreSQL server per topology, started for the
	// first mode that measures tps there (or the reason it could not be).
	run    *stage
	pgs    map[string]*postgres
	pgErrs map[string]error
}

// newBench builds the tools and the topologies. On error nothing is left.
func newBench(ctx context.Context, cfg config) (b *bench, err error) {
	b = &bench{cfg: cfg, started: time.Now()}
	if b.root, err = moduleRoot(); err != nil {
		return nil, err
	}
	if b.out, err = filepath.Abs(cfg.out); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(filepath.Join(b.out, "logs")); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		return nil, err
	}
	progress("building bin/adjacent and bin/blast")
	if b.tools, err = findTools(ctx, b.root, cfg.wireguard, cfg.adjacent); err != nil {
		return nil, err
	}
	if b.tmp, err = os.MkdirTemp("", "adjacent-bench-"); err != nil {
		return nil, err
	}
	if b.run, err = newStage(filepath.Join(b.out, "logs", "run")); err != nil {
		os.RemoveAll(b.tmp)
		return nil, err
	}
	b.pgs, b.pgErrs = map[string]*postgres{}, map[string]error{}
	defer func() {
		if err != nil {
			b.Close()
			b = nil
		}
	}()
	progress("building the namespaces")
	sweep(ctx)
	if b.direct, b.relay, err = buildTopologies(ctx); err != nil {
		return b, err
	}
	return b, nil
}

// startServers starts iperf3 (if there is one) and blast in ns, on host and the two ports.
func (b *bench) startServers(ctx context.Context, s *stage, label string, ns *netns.Namespace, host string, iperf, blast int) error {
	if path := b.tools.path["iperf3"]; path != "" {
		args := []string{"-s", "-p", fmt.Sprint(iperf)}
		if host != "0.0.0.0" {
			args = append(args, "-B", host)
		}
		p, err := s.start(ns, label+"-iperf3", nil, path, args...)
		if err != nil {
			return err
		}
		if err := waitListen(ctx, ns, iperf, p); err != nil {
			return fmt.Errorf("iperf3 server: %w", err)
		}
	}
	p, err := s.start(ns, label+"-blast", nil, b.tools.blast, "serve", "-listen", fmt.Sprintf("%s:%d", host, blast))
	if err != nil {
		return err
	}
	if err := waitListen(ctx, ns, blast, p); err != nil {
		return fmt.Errorf("blast server: %w", err)
	}
	return nil
}

// postgresIn is the topology's PostgreSQL server with pgbench's tables, in its server
// namespace ns, started on first use; nil with the reason when it cannot be started.
func (b *bench) postgresIn(ctx context.Context, topo string, ns *netns.Namespace) (*postgres, error) {
	if pg, err := b.pgs[topo], b.pgErrs[topo]; pg != nil || err != nil {
		return pg, err
	}
	progress("starting PostgreSQL in %s's B and filling pgbench's tables", topo)
	pg, err := b.startPostgres(ctx, b.run, "postgres-"+topo, ns)
	if err != nil {
		err = fmt.Errorf("PostgreSQL: %w", err)
		progress("%v; no tps in this run's %s modes", err, topo)
	}
	b.pgs[topo], b.pgErrs[topo] = pg, err
	return pg, err
}

// Close removes the namespaces, with whatever still runs in them, and the scratch directory.
func (b *bench) Close() error {
	if b.run != nil {
		b.run.close()
	}
	var errs []string
	for _, ns := range []*netns.Namespace{b.direct.a, b.direct.b, b.relay.a, b.relay.b, b.relay.hub} {
		if ns != nil {
			if err := ns.Close(); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleanup: %s", strings.Join(errs, "; "))
	}
	return nil
}

// scratch is a fresh directory for one mode's keys and configuration.
func (b *bench) scratch(name string) (string, error) {
	return os.MkdirTemp(b.tmp, name+"-")
}

// progress tells the person waiting what the run is doing, on standard error.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
