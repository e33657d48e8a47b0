package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/user"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/adjacentnet/adjacent/control/policy"
)

// DefaultPath is where the system service reads its config.
const DefaultPath = "/etc/adjacent/adjacent.yaml"

// MaxSize bounds a config file.
const MaxSize = 1 << 20

// Config is one node's declared state.
type Config struct {
	Hub       *Hub      `yaml:"hub,omitempty" json:"hub,omitempty"`
	Enroll    *Enroll   `yaml:"enroll,omitempty" json:"enroll,omitempty"`
	APISocket APISocket `yaml:"api_socket,omitempty" json:"api_socket,omitempty"`
	LogLevel  string    `yaml:"log_level,omitempty" json:"log_level,omitempty"` // debug, info, warn or error
	Metrics   string    `yaml:"metrics,omitempty" json:"metrics,omitempty"`     // HOST:PORT to serve Prometheus metrics on
	Relays    []Relay   `yaml:"relays,omitempty" json:"relays,omitempty"`
	Outlets   []Outlet  `yaml:"outlets,omitempty" json:"outlets,omitempty"`
	Inlets    []Inlet   `yaml:"inlets,omitempty" json:"inlets,omitempty"`
	Policies  []Policy  `yaml:"policies,omitempty" json:"policies,omitempty"`
}

// Hub makes the node the hub of a new project, as `adjacent project create` does.
type Hub struct {
	Project            string   `yaml:"project" json:"project"`
	Listen             string   `yaml:"listen,omitempty" json:"listen,omitempty"`
	PublicAddress      string   `yaml:"public_address,omitempty" json:"public_address,omitempty"`
	CredentialLifetime Duration `yaml:"credential_lifetime,omitempty" json:"credential_lifetime,omitempty"`
	Line               int      `yaml:"-" json:"-"`
}

// Enroll makes the node a member with the ticket in a file, redeemed once: a node that is
// in a project already does not redeem it again.
type Enroll struct {
	Ticket string `yaml:"ticket" json:"ticket"` // path of the ticket file
	Line   int    `yaml:"-" json:"-"`
}

// APISocket is who besides the node's user may use its API socket.
type APISocket struct {
	Group string `yaml:"group,omitempty" json:"group,omitempty"` // this group may use the socket (mode 0660)
}

// Relay is a relay this member holds at its hub.
type Relay struct {
	Name string `yaml:"name" json:"name"`
	Line int    `yaml:"-" json:"-"`
}

// Outlet is a TCP outlet.
type Outlet struct {
	Name  string `yaml:"name,omitempty" json:"name,omitempty"` // default "outlet"
	To    string `yaml:"to" json:"to"`                         // [HOST:]PORT
	Allow string `yaml:"allow,omitempty" json:"allow,omitempty"`
	Line  int    `yaml:"-" json:"-"`
}

// Inlet is a TCP inlet, classic or (Tun) transparent, in packet mode if Raw.
type Inlet struct {
	From         string `yaml:"from" json:"from"`
	Via          string `yaml:"via,omitempty" json:"via,omitempty"`
	To           string `yaml:"to,omitempty" json:"to,omitempty"`
	Allow        string `yaml:"allow,omitempty" json:"allow,omitempty"`
	Tun          bool   `yaml:"tun,omitempty" json:"tun,omitempty"`
	Raw          bool   `yaml:"raw,omitempty" json:"raw,omitempty"`
	HostsFile    string `yaml:"hosts_file,omitempty" json:"hosts_file,omitempty"`
	AddressRange string `yaml:"address_range,omitempty" json:"address_range,omitempty"`
	Line         int    `yaml:"-" json:"-"`
}

// Policy guards a resource type (Type) or one named resource (Name).
type Policy struct {
	Type  string `yaml:"type,omitempty" json:"type,omitempty"`
	Name  string `yaml:"name,omitempty" json:"name,omitempty"`
	Allow string `yaml:"allow" json:"allow"`
	Line  int    `yaml:"-" json:"-"`
}

// Duration is a time.Duration written as "1h30m".
type Duration time.Duration

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a duration such as 12h or 90m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Key is what identifies a resource across two configs.
func (o Outlet) Key() string { return o.name() }

func (o Outlet) name() string {
	if o.Name == "" {
		return "outlet"
	}
	return o.Name
}

// Key is the address an inlet listens on, as the node names it.
func (in Inlet) Key() string {
	if in.Tun {
		return in.From
	}
	hp, err := HostPort(in.From)
	if err != nil {
		return in.From
	}
	return hp
}

// Kind is "type" or "name", Resource the type or name, as the node stores them.
func (p Policy) Kind() (kind, resource string) {
	if p.Type != "" {
		return "type", p.Type
	}
	return "name", p.Name
}

// Key is the policy's kind and resource.
func (p Policy) Key() string { k, r := p.Kind(); return k + " " + r }

func (in Inlet) same(o Inlet) bool {
	in.Line, o.Line = 0, 0
	in.From, o.From = in.Key(), o.Key()
	return in == o
}
func (o Outlet) same(p Outlet) bool {
	o.Line, p.Line = 0, 0
	o.Name, p.Name = o.name(), p.name()
	return o == p
}
func (p Policy) same(q Policy) bool { p.Line, q.Line = 0, 0; return p == q }

// Error is a refusal of a config file at a line.
type Error struct {
	File   string
	Line   int // 0 when the whole file is at fault
	Reason string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Reason
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Reason
}

// Errors are all the refusals of one file, in line order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Decode reads a config file's bytes strictly and validates it; file names it in errors.
func Decode(file string, data []byte) (*Config, error) {
	if len(data) > MaxSize {
		return nil, &Error{File: file, Reason: fmt.Sprintf("the file is larger than %d bytes", MaxSize)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, err)
	}
	cfg := &Config{}
	if len(root.Content) == 0 { // an empty file declares nothing
		return cfg, nil
	}
	if root.Content[0].Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Content[0].Line, Reason: "the file must be a mapping of keys such as outlets:, inlets:, relays:"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{File: file, Line: extra.Line, Reason: "a second YAML document; a config file holds one"}
	}
	cfg.lines(root.Content[0])
	if errs := cfg.validate(file); len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// yamlError turns the yaml package's errors into FILE:LINE: reason.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var errs Errors
	for _, m := range msgs {
		e := &Error{File: file, Reason: strings.TrimPrefix(m, "yaml: ")}
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			e.Line, _ = strconv.Atoi(sub[1])
			e.Reason = sub[2]
		}
		e.Reason = strings.ReplaceAll(e.Reason, "in type config.", "in ")
		errs = append(errs, e)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errs
}

// lines records where each declaration starts, for errors found after decoding.
func (c *Config) lines(m *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i].Value, m.Content[i+1]
		items := func(set func(int, int)) {
			if v.Kind == yaml.SequenceNode {
				for j, it := range v.Content {
					set(j, it.Line)
				}
			}
		}
		switch k {
		case "hub":
			if c.Hub != nil {
				c.Hub.Line = v.Line
			}
		case "enroll":
			if c.Enroll != nil {
				c.Enroll.Line = v.Line
			}
		case "relays":
			items(func(j, l int) {
				if j < len(c.Relays) {
					c.Relays[j].Line = l
				}
			})
		case "outlets":
			items(func(j, l int) {
				if j < len(c.Outlets) {
					c.Outlets[j].Line = l
				}
			})
		case "inlets":
			items(func(j, l int) {
				if j < len(c.Inlets) {
					c.Inlets[j].Line = l
				}
			})
		case "policies":
			items(func(j, l int) {
				if j < len(c.Policies) {
					c.Policies[j].Line = l
				}
			})
		}
	}
}

// UnmarshalYAML lets a relay be written as a bare name.
func (r *Relay) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		r.Name = n.Value
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a relay is a name, or a mapping with name:", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Value != "name" {
			return fmt.Errorf("line %d: field %s not found in relay", k.Line, k.Value)
		}
		r.Name = n.Content[i+1].Value
	}
	return nil
}

// MarshalYAML writes a relay as its name.
func (r Relay) MarshalYAML() (any, error) { return r.Name, nil }

var (
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	projectRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	groupRe   = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_.-]{0,31}|[0-9]{1,10})$`)
	hostRe    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)
)

// Resource types that take policies.
var resourceTypes = []string{"echo", "relay", "tcp-outlet", "tcp-inlet"}

// HostPort completes [HOST:]PORT with the loopback address, as the node does.
func HostPort(s string) (string, error) {
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

func (c *Config) validate(file string) Errors {
	var errs Errors
	bad := func(line int, format string, args ...any) {
		errs = append(errs, &Error{File: file, Line: line, Reason: fmt.Sprintf(format, args...)})
	}
	checkPolicy := func(line int, what, expr string) {
		if expr == "" {
			return
		}
		if _, err := policy.Parse(expr); err != nil {
			bad(line, "%s: %v", what, err)
		}
	}
	if c.Hub != nil && c.Enroll != nil {
		bad(c.Enroll.Line, "enroll: and hub: exclude each other: a node is a project's hub or one of its members")
	}
	if h := c.Hub; h != nil {
		if !projectRe.MatchString(h.Project) {
			bad(h.Line, "hub: project %q: use lower-case letters, digits and '-', at most 63", h.Project)
		}
		for _, a := range []struct{ key, v string }{{"listen", h.Listen}, {"public_address", h.PublicAddress}} {
			if a.v == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(a.v); err != nil {
				bad(h.Line, "hub: %s %q: want HOST:PORT, e.g. 0.0.0.0:4000", a.key, a.v)
			}
		}
		if d := time.Duration(h.CredentialLifetime); d != 0 && d < 10*time.Second {
			bad(h.Line, "hub: credential_lifetime %v: want at least 10s", d)
		}
	}
	if e := c.Enroll; e != nil && e.Ticket == "" {
		bad(e.Line, "enroll: give ticket: the path of the ticket file")
	}
	if g := c.APISocket.Group; g != "" && !groupRe.MatchString(g) {
		bad(0, "api_socket: group %q is not a group name", g)
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		bad(0, "log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.Metrics != "" {
		if _, err := netip.ParseAddrPort(c.Metrics); err != nil {
			if _, _, err := net.SplitHostPort(c.Metrics); err != nil {
				bad(0, "metrics %q: want HOST:PORT, e.g. 127.0.0.1:9090", c.Metrics)
			}
		}
	}
	seen := map[string]int{}
	dup := func(kind, key string, line int) bool {
		if first, ok := seen[kind+" "+key]; ok {
			bad(line, "%s %s is declared twice (first at line %d)", kind, key, first)
			return true
		}
		seen[kind+" "+key] = line
		return false
	}
	for _, r := range c.Relays {
		if !nameRe.MatchString(r.Name) {
			bad(r.Line, "relay %q: use letters, digits, '.', '_' and '-'", r.Name)
			continue
		}
		dup("relay", r.Name, r.Line)
	}
	for _, o := range c.Outlets {
		name := o.name()
		if !nameRe.MatchString(name) || strings.HasPrefix(name, "sc.") || strings.HasPrefix(name, "portal.") {
			bad(o.Line, "outlet name %q: use letters, digits, '.', '_' and '-'", name)
		}
		if _, err := HostPort(o.To); err != nil {
			bad(o.Line, "outlet %s: to: %v", name, err)
		}
		checkPolicy(o.Line, "outlet "+name+": allow", o.Allow)
		dup("outlet", name, o.Line)
	}
	for _, in := range c.Inlets {
		what := "inlet " + in.From
		if in.Tun {
			host, port, err := net.SplitHostPort(in.From)
			p, perr := strconv.ParseUint(port, 10, 16)
			switch {
			case err != nil || host == "":
				bad(in.Line, "%s: with tun: true give from: HOST:PORT, e.g. db.bank.internal:5432", what)
			case perr != nil || p == 0:
				bad(in.Line, "%s: port must be a number from 1 to 65535", what)
			case !hostRe.MatchString(host) && !isAddr(host):
				bad(in.Line, "%s: %q is neither an IP address nor a host name", what, host)
			}
			if in.AddressRange != "" {
				if _, err := netip.ParsePrefix(in.AddressRange); err != nil {
					bad(in.Line, "%s: address_range %q: want a prefix such as 100.127.0.0/16", what, in.AddressRange)
				}
			}
			if in.HostsFile != "" && !strings.HasPrefix(in.HostsFile, "/") {
				bad(in.Line, "%s: hosts_file %q: give an absolute path", what, in.HostsFile)
			}
		} else {
			if in.HostsFile != "" || in.AddressRange != "" || in.Raw {
				bad(in.Line, "%s: hosts_file, address_range and raw go with tun: true", what)
			}
			if _, err := HostPort(in.From); err != nil {
				bad(in.Line, "inlet from: %v", err)
			}
		}
		switch {
		case in.Via == "" && in.To == "":
			bad(in.Line, "%s: give via: RELAY (and to: OUTLET, default outlet) or to: ROUTE", what)
		case in.Via != "" && !nameRe.MatchString(in.Via):
			bad(in.Line, "%s: via %q is not a relay name", what, in.Via)
		case in.Via == "" && !strings.HasPrefix(in.To, "/"):
			bad(in.Line, "%s: to %q: without via: give a route to an outlet, e.g. /ip4/10.0.0.2/tcp/4000/secure/api/service/outlet", what, in.To)
		}
		checkPolicy(in.Line, what+": allow", in.Allow)
		dup("inlet", in.Key(), in.Line)
	}
	for _, p := range c.Policies {
		switch {
		case (p.Type == "") == (p.Name == ""):
			bad(p.Line, "policy: give one of type: (one of %s) or name: (an inlet's or outlet's name)", strings.Join(resourceTypes, ", "))
			continue
		case p.Type != "" && !slices.Contains(resourceTypes, p.Type):
			bad(p.Line, "policy: unknown resource type %q (want one of %s)", p.Type, strings.Join(resourceTypes, ", "))
		case p.Allow == "":
			bad(p.Line, "policy %s: give allow: an expression such as (= subject.role \"db\")", p.Key())
		}
		checkPolicy(p.Line, "policy "+p.Key()+": allow", p.Allow)
		dup("policy", p.Key(), p.Line)
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return a.Line - b.Line })
	return errs
}

func isAddr(s string) bool { _, err := netip.ParseAddr(s); return err == nil }

// LookupGroup returns the id of the named group; a number is a group id.
func LookupGroup(name string) (int, error) {
	if id, err := strconv.ParseUint(name, 10, 31); err == nil {
		return int(id), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("api_socket: group %s: %w; create it (e.g. with: adjacent service install) or name another", name, err)
	}
	return strconv.Atoi(g.Gid)
}

// Marshal writes c as YAML that Decode accepts.
func Marshal(c *Config) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	enc.Close()
	return b.Bytes(), nil
}
