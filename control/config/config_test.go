package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const full = `# a member
enroll:
  ticket: /etc/adjacent/bank.ticket
api_socket:
  group: adjacent
log_level: debug
metrics: 127.0.0.1:9090
relays: [postgres]
outlets:
  - name: db
    to: 5432
    allow: (= subject.role "app")
inlets:
  - from: 15432
    via: postgres
    to: db
  - from: db.bank.internal:5432
    tun: true
    via: postgres
    hosts_file: /etc/hosts
policies:
  - type: tcp-outlet
    allow: (= subject.role "app")
  - name: db
    allow: "true"
`

func TestDecodeFull(t *testing.T) {
	c, err := Decode("a.yaml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if c.Enroll.Ticket != "/etc/adjacent/bank.ticket" || c.APISocket.Group != "adjacent" || c.LogLevel != "debug" || c.Metrics != "127.0.0.1:9090" {
		t.Errorf("decoded %+v", c)
	}
	if len(c.Relays) != 1 || c.Relays[0].Name != "postgres" || c.Relays[0].Line != 8 {
		t.Errorf("relays %+v", c.Relays)
	}
	if len(c.Outlets) != 1 || c.Outlets[0].Line != 10 || c.Outlets[0].To != "5432" {
		t.Errorf("outlets %+v", c.Outlets)
	}
	if len(c.Inlets) != 2 || c.Inlets[0].Key() != "127.0.0.1:15432" || !c.Inlets[1].Tun || c.Inlets[1].Line != 17 {
		t.Errorf("inlets %+v", c.Inlets)
	}
	if k, r := c.Policies[0].Kind(); k != "type" || r != "tcp-outlet" || c.Policies[1].Key() != "name db" {
		t.Errorf("policies %+v", c.Policies)
	}
	// What Marshal writes, Decode reads back to the same config.
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode("show", b)
	if err != nil {
		t.Fatalf("Decode(Marshal) = %v\n%s", err, b)
	}
	if d := Compare(c, back); !d.Empty() || !reflect.DeepEqual(c.Enroll.Ticket, back.Enroll.Ticket) {
		t.Errorf("round trip changed the config: %+v\n%s", d, b)
	}
}

func TestDecodeHub(t *testing.T) {
	c, err := Decode("h.yaml", []byte("hub:\n  project: acme\n  listen: 127.0.0.1:4000\n  credential_lifetime: 2h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hub.Project != "acme" || time.Duration(c.Hub.CredentialLifetime) != 2*time.Hour {
		t.Errorf("hub %+v", c.Hub)
	}
	if c, err := Decode("e.yaml", nil); err != nil || c == nil {
		t.Errorf("an empty file: %v, %v", c, err)
	}
}

// TestDecodeInvalid: every refusal names the file, the line and the reason.
func TestDecodeInvalid(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"unknown key", "outlets:\n  - name: db\n    to: 5432\n    tow: 1\n", "f.yaml:4: field tow not found in Outlet"},
		{"unknown top key", "log_level: info\nrelay: [a]\n", "f.yaml:2: field relay not found in Config"},
		{"syntax", "outlets:\n  - name: db\n   to: [\n", "f.yaml:1: did not find expected '-' indicator"},
		{"wrong type", "inlets: 3\n", "f.yaml:1: cannot unmarshal !!int `3` into []config.Inlet"},
		{"not a mapping", "- a\n- b\n", "f.yaml:1: the file must be a mapping"},
		{"bad port", "outlets:\n  - name: db\n    to: 99999\n", "f.yaml:2: outlet db: to: \"99999\": want [HOST:]PORT"},
		{"bad outlet name", "outlets:\n  - name: a/b\n    to: 1\n", "f.yaml:2: outlet name \"a/b\""},
		{"duplicate outlet", "outlets:\n  - to: 1\n  - name: outlet\n    to: 2\n", "f.yaml:3: outlet outlet is declared twice (first at line 2)"},
		{"duplicate inlet", "inlets:\n  - from: 15432\n    via: r\n  - from: 127.0.0.1:15432\n    via: r\n", "f.yaml:4: inlet 127.0.0.1:15432 is declared twice (first at line 2)"},
		{"inlet without route", "inlets:\n  - from: 15432\n", "f.yaml:2: inlet 15432: give via: RELAY"},
		{"inlet to not a route", "inlets:\n  - from: 15432\n    to: db\n", "f.yaml:2: inlet 15432: to \"db\": without via"},
		{"hosts file without tun", "inlets:\n  - from: 15432\n    via: r\n    hosts_file: /etc/hosts\n", "f.yaml:2: inlet 15432: hosts_file, address_range and raw go with tun: true"},
		{"raw without tun", "inlets:\n  - from: 15432\n    via: r\n    raw: true\n", "f.yaml:2: inlet 15432: hosts_file, address_range and raw go with tun: true"},
		{"tun without host", "inlets:\n  - from: 5432\n    tun: true\n    via: r\n", "f.yaml:2: inlet 5432: with tun: true give from: HOST:PORT"},
		{"bad policy", "policies:\n  - type: tcp-outlet\n    allow: (= subject.role\n", "f.yaml:2: policy type tcp-outlet: allow: "},
		{"policy unknown type", "policies:\n  - type: disk\n    allow: \"true\"\n", "f.yaml:2: policy: unknown resource type \"disk\""},
		{"policy both", "policies:\n  - type: relay\n    name: x\n    allow: \"true\"\n", "f.yaml:2: policy: give one of type:"},
		{"bad outlet allow", "outlets:\n  - to: 1\n    allow: (nope)\n", "f.yaml:2: outlet outlet: allow: "},
		{"hub and enroll", "hub:\n  project: acme\nenroll:\n  ticket: t\n", "f.yaml:4: enroll: and hub: exclude each other"},
		{"bad project", "hub:\n  project: Acme!\n", "f.yaml:2: hub: project \"Acme!\""},
		{"bad lifetime", "hub:\n  project: acme\n  credential_lifetime: soon\n", "f.yaml:3: \"soon\" is not a duration"},
		{"bad log level", "log_level: loud\n", "f.yaml: log_level \"loud\": want debug"},
		{"bad metrics", "metrics: nine\n", "f.yaml: metrics \"nine\": want HOST:PORT"},
		{"bad group", "api_socket:\n  group: \"a b\"\n", "f.yaml: api_socket: group \"a b\""},
		{"bad relay", "relays:\n  - name: a b\n", "f.yaml:2: relay \"a b\""},
		{"relay unknown key", "relays:\n  - nme: a\n", "f.yaml:2: field nme not found in relay"},
		{"two documents", "log_level: info\n---\nlog_level: warn\n", "f.yaml:2: a second YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode("f.yaml", []byte(tc.text))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q, want prefix %q", err, tc.want)
			}
			var e *Error
			var es Errors
			if !errors.As(err, &e) && !errors.As(err, &es) {
				t.Errorf("error %T is not a config.Error", err)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	old, err := Decode("old", []byte(`relays: [a, b]
outlets:
  - {name: db, to: 5432}
  - {name: web, to: 80}
inlets:
  - {from: 15432, via: a, to: db}
  - {from: 18080, via: a, to: web}
policies:
  - {type: tcp-outlet, allow: "true"}
`))
	if err != nil {
		t.Fatal(err)
	}
	new, err := Decode("new", []byte(`relays: [a, c]
outlets:
  - {name: db, to: 5432}
  - {name: web, to: 8080}
  - {name: ssh, to: 22}
inlets:
  - {from: "127.0.0.1:15432", via: a, to: db}
policies:
  - {type: tcp-outlet, allow: "false"}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := Compare(old, new)
	keys := func(n int, f func(int) string) []string {
		var s []string
		for i := range n {
			s = append(s, f(i))
		}
		return s
	}
	for _, c := range []struct {
		what      string
		got, want []string
	}{
		{"relays created", keys(len(d.Relays.Create), func(i int) string { return d.Relays.Create[i].Name }), []string{"c"}},
		{"relays deleted", keys(len(d.Relays.Delete), func(i int) string { return d.Relays.Delete[i].Name }), []string{"b"}},
		{"outlets created", keys(len(d.Outlets.Create), func(i int) string { return d.Outlets.Create[i].Key() }), []string{"ssh"}},
		{"outlets replaced", keys(len(d.Outlets.Replace), func(i int) string { return d.Outlets.Replace[i].Key() }), []string{"web"}},
		{"outlets kept", keys(len(d.Outlets.Keep), func(i int) string { return d.Outlets.Keep[i].Key() }), []string{"db"}},
		{"inlets deleted", keys(len(d.Inlets.Delete), func(i int) string { return d.Inlets.Delete[i].Key() }), []string{"127.0.0.1:18080"}},
		{"inlets kept", keys(len(d.Inlets.Keep), func(i int) string { return d.Inlets.Keep[i].Key() }), []string{"127.0.0.1:15432"}},
		{"policies replaced", keys(len(d.Policies.Replace), func(i int) string { return d.Policies.Replace[i].Key() }), []string{"type tcp-outlet"}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if !Compare(new, new).Empty() || Compare(nil, new).Empty() {
		t.Error("Compare(x, x) must be empty and Compare(nil, x) not")
	}
}

// FuzzDecode: the decoder never panics, and what it accepts it writes back as YAML it
// accepts again, unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("hub:\n  project: acme\n"))
	f.Add([]byte("inlets: [{from: 1, via: r}]\n"))
	f.Add([]byte("outlets:\n  - name: db\n    to: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode("fuzz", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		b, err := Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode("again", b)
		if err != nil {
			t.Fatalf("Decode(Marshal(c)) = %v\n%s", err, b)
		}
		if !Compare(c, back).Empty() {
			t.Fatalf("round trip changed the config\n%s", b)
		}
	})
}
