package state

import (
	"context"
	"fmt"
)

// Outlet is a stored TCP outlet: the worker name inlets reach and the target it dials.
type Outlet struct {
	Name    string
	Target  string
	Created int64
}

// Inlet is a stored TCP inlet: the address it listens on and the route text to its outlet.
// A transparent inlet (Tun) listens on a virtual address of the node's TUN device; Host is
// the name mapped to that address in HostsFile, or empty; a Raw one carries the clients'
// TCP segments (packet mode) instead of terminating their connections.
type Inlet struct {
	Name      string
	Listen    string
	Route     string
	Created   int64
	Tun       bool
	Host      string
	HostsFile string
	Raw       bool
}

// PutOutlet stores an outlet, replacing one of the same name.
func (s *Store) PutOutlet(ctx context.Context, o Outlet) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO outlets (name, target, created) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET target = excluded.target`, o.Name, o.Target, o.Created)
	if err != nil {
		return fmt.Errorf("state: store outlet %s: %w", o.Name, err)
	}
	return nil
}

// Outlets returns the stored outlets.
func (s *Store) Outlets(ctx context.Context) ([]Outlet, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, target, created FROM outlets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("state: list outlets: %w", err)
	}
	defer rows.Close()
	var out []Outlet
	for rows.Next() {
		var o Outlet
		if err := rows.Scan(&o.Name, &o.Target, &o.Created); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// DeleteOutlet removes an outlet.
func (s *Store) DeleteOutlet(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM outlets WHERE name = ?`, name)
	return err
}

// PutInlet stores an inlet, replacing one of the same name.
func (s *Store) PutInlet(ctx context.Context, in Inlet) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO inlets (name, listen, route, created, tun, host, hosts_file, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET listen = excluded.listen, route = excluded.route,
			tun = excluded.tun, host = excluded.host, hosts_file = excluded.hosts_file, raw = excluded.raw`,
		in.Name, in.Listen, in.Route, in.Created, in.Tun, in.Host, in.HostsFile, in.Raw)
	if err != nil {
		return fmt.Errorf("state: store inlet %s: %w", in.Name, err)
	}
	return nil
}

// Inlets returns the stored inlets.
func (s *Store) Inlets(ctx context.Context) ([]Inlet, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, listen, route, created, tun, host, hosts_file, raw FROM inlets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("state: list inlets: %w", err)
	}
	defer rows.Close()
	var out []Inlet
	for rows.Next() {
		var in Inlet
		if err := rows.Scan(&in.Name, &in.Listen, &in.Route, &in.Created, &in.Tun, &in.Host, &in.HostsFile, &in.Raw); err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// DeleteInlet removes an inlet.
func (s *Store) DeleteInlet(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM inlets WHERE name = ?`, name)
	return err
}
