package api

import "time"

// NodeInfo describes a running node.
type NodeInfo struct {
	Home       string    `json:"home"`
	Pid        int       `json:"pid"`
	Started    time.Time `json:"started"`
	Listen     []string  `json:"listen,omitempty"`
	Identifier string    `json:"identifier,omitempty"`
	Router     Counters  `json:"router"`
	Transport  Transport `json:"transport"`
}

// Counters are the router's message counters.
type Counters struct {
	Delivered  uint64 `json:"delivered"`
	Denied     uint64 `json:"denied"`
	Unroutable uint64 `json:"unroutable"`
	Refused    uint64 `json:"refused"` // of the denied and unroutable, answered with "no service"
}

// Transport are the TCP transport's counters.
type Transport struct {
	Connections int    `json:"connections"`
	FramesIn    uint64 `json:"frames_in"`
	FramesOut   uint64 `json:"frames_out"`
	BytesIn     uint64 `json:"bytes_in"`
	BytesOut    uint64 `json:"bytes_out"`
	Refused     uint64 `json:"refused"`
}

// SendMessage asks the node to send a message along a route and wait for the reply.
type SendMessage struct {
	To      string        `json:"to"`
	Payload []byte        `json:"payload"`
	Timeout time.Duration `json:"timeout"`
}

// MessageReply is the payload of the reply.
type MessageReply struct {
	Payload []byte `json:"payload"`
}

// Error is the body of every failed request.
type Error struct {
	Error string `json:"error"`
}

// Identity describes one of the home's identities.
type Identity struct {
	Name       string `json:"name"`
	Identifier string `json:"identifier"`
	Default    bool   `json:"default"`           // the node's own identity
	Changes    int    `json:"changes"`           // key rotations plus one
	PrimaryKey string `json:"primary_key"`       // hex of the current primary public key
	History    string `json:"history,omitempty"` // hex of the change history, with --full
}

// CreateIdentity asks for a new identity.
type CreateIdentity struct {
	Name string `json:"name"`
}

// CreateChannel asks for a secure channel to the listener at the end of To.
type CreateChannel struct {
	To         string        `json:"to"`
	Authorized []string      `json:"authorized,omitempty"`
	Timeout    time.Duration `json:"timeout,omitempty"`
}

// Channel describes a secure channel.
type Channel struct {
	Address     string    `json:"address"` // route text to send through it
	Peer        string    `json:"peer"`
	Initiator   bool      `json:"initiator"`
	Created     time.Time `json:"created"`
	MessagesIn  uint64    `json:"messages_in"`
	MessagesOut uint64    `json:"messages_out"`
	BytesIn     uint64    `json:"bytes_in"`
	BytesOut    uint64    `json:"bytes_out"`
	Generation  int       `json:"generation"` // handshakes over the channel's life, modulo 256
}

// CreateProject turns the node into the hub of a new project.
type CreateProject struct {
	Name          string        `json:"name"`
	Listen        string        `json:"listen,omitempty"`
	PublicAddress string        `json:"public_address,omitempty"`
	Lifetime      time.Duration `json:"credential_lifetime,omitempty"`
	Store         string        `json:"store,omitempty"` // postgres:// URL of the member store
}

// Project describes the project the node belongs to.
type Project struct {
	Name              string    `json:"name"`
	Role              string    `json:"role"` // hub or member
	Authority         string    `json:"authority"`
	Hub               string    `json:"hub"` // route text of the hub's listener
	Connected         bool      `json:"connected,omitempty"`
	Lifetime          Duration  `json:"credential_lifetime,omitempty"`
	CredentialExpires time.Time `json:"credential_expires"`
	// Refusals: control events dropped because the authority did not sign them (forged,
	// tampered, stale or for another project), and messages of revoked members refused.
	EventsDropped  uint64 `json:"events_dropped"`
	RevokedRefused uint64 `json:"revoked_refused"`
}

// CreateTicket asks for an enrollment ticket.
type CreateTicket struct {
	Attributes map[string]string `json:"attributes,omitempty"`
	Relay      string            `json:"relay,omitempty"`
	Enroller   bool              `json:"enroller,omitempty"`
	Uses       *int              `json:"uses,omitempty"`       // nil: 1; at most 1000
	ExpiresIn  *time.Duration    `json:"expires_in,omitempty"` // nil: 10 minutes; at most 7 days
}

// Ticket is an enrollment ticket's text.
type Ticket struct {
	Ticket  string    `json:"ticket"`
	Expires time.Time `json:"expires"`
}

// Enroll redeems a ticket (its text, or the path of a file holding it).
type Enroll struct {
	Ticket string `json:"ticket"`
}

// Member is a project member.
type Member struct {
	Identifier string            `json:"identifier"`
	Attributes map[string]string `json:"attributes"`
	AddedBy    string            `json:"added_by,omitempty"`
	Added      time.Time         `json:"added"`
	// Changes is the length of the member's identity history as the hub has seen it on
	// its channels since it started: key rotations plus one; absent if not seen rotated.
	Changes int `json:"changes,omitempty"`
}

// MemberDeleted is the answer to a member delete.
type MemberDeleted struct {
	Identifier string `json:"deleted"`
	// TicketUsesVoided is how many uses the ticket the member enrolled with had left: deleting
	// a member voids that ticket, so it cannot enroll again with it.
	TicketUsesVoided int `json:"ticket_uses_voided"`
}

// Relay is a relay at the hub.
type Relay struct {
	Name    string `json:"name"`
	Address string `json:"address"` // route text at the hub
	Owner   string `json:"owner,omitempty"`
	// Clients are the members whose messages the relay forwarded (listed on the hub).
	Clients []RelayClient `json:"clients,omitempty"`
	// Origin is "config" for a resource the node's config file owns, empty for one made
	// with the CLI.
	Origin string `json:"origin,omitempty"`
}

// RelayClient is a member that used a relay.
type RelayClient struct {
	Identifier string    `json:"identifier"`
	LastSeen   time.Time `json:"last_seen"`
	Messages   uint64    `json:"messages"`
	Bytes      uint64    `json:"bytes"` // payload bytes it sent through the relay
}

// CreateRelay asks the hub for a relay.
type CreateRelay struct {
	Name string `json:"name"`
}

// Policy is a policy of a resource or resource type.
type Policy struct {
	Kind       string `json:"kind"` // "type" or "name"
	Resource   string `json:"resource"`
	Expression string `json:"expression"`
}

// Credential describes the node's own credential.
type Credential struct {
	Subject    string            `json:"subject"`
	Issuer     string            `json:"issuer"`
	Attributes map[string]string `json:"attributes"`
	Issued     time.Time         `json:"issued"`
	Expires    time.Time         `json:"expires"`
}

// CreateOutlet asks for a TCP outlet.
type CreateOutlet struct {
	Name  string `json:"name"`            // the worker inlets reach; default "outlet"
	To    string `json:"to"`              // [HOST:]PORT; the host defaults to 127.0.0.1
	Allow string `json:"allow,omitempty"` // policy for this outlet
}

// Outlet describes a TCP outlet.
type Outlet struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Address  string `json:"address"` // route text at this node
	Policy   string `json:"policy"`
	Active   int64  `json:"active"`
	Total    int64  `json:"total"`
	BytesIn  int64  `json:"bytes_in"`  // from the target into the portal
	BytesOut int64  `json:"bytes_out"` // from the portal to the target
	// Origin is "config" for a resource the node's config file owns, empty for one made
	// with the CLI.
	Origin string `json:"origin,omitempty"`
}

// CreateInlet asks for a TCP inlet.
type CreateInlet struct {
	From  string `json:"from"`            // [HOST:]PORT to listen on
	Via   string `json:"via,omitempty"`   // relay name at the project's hub
	To    string `json:"to,omitempty"`    // outlet name (with Via) or a whole route to an outlet
	Allow string `json:"allow,omitempty"` // policy the outlet's node must satisfy
	// Tun makes a transparent inlet: From is HOST:PORT, served on the node's TUN device.
	// HOST is an IP address, or a name given an address from AddressRange (default
	// 100.127.0.0/16) and written into HostsFile (default /etc/hosts; an absolute path).
	Tun          bool   `json:"tun,omitempty"`
	HostsFile    string `json:"hosts_file,omitempty"`
	AddressRange string `json:"address_range,omitempty"`
	// Raw (with Tun) makes a packet-mode inlet: the clients' own TCP segments travel to the
	// outlet, whose node injects them with a raw socket (it needs CAP_NET_RAW).
	Raw bool `json:"raw,omitempty"`
	// NoWait creates the inlet without checking its path first (for a relay or outlet that
	// comes later); by default a path that does not work, or refuses, fails the create.
	NoWait bool `json:"no_wait,omitempty"`
}

// Inlet describes a TCP inlet.
type Inlet struct {
	Name      string `json:"name"`
	Listen    string `json:"listen"`
	Route     string `json:"route"`
	Policy    string `json:"policy"`
	Tun       string `json:"tun,omitempty"`  // the TUN device of a transparent inlet
	Host      string `json:"host,omitempty"` // its name in HostsFile
	HostsFile string `json:"hosts_file,omitempty"`
	Raw       bool   `json:"raw,omitempty"` // packet mode
	Up        bool   `json:"up"`            // the path to the outlet is established
	Active    int64  `json:"active"`
	Total     int64  `json:"total"`
	BytesIn   int64  `json:"bytes_in"`  // from local clients into the portal
	BytesOut  int64  `json:"bytes_out"` // from the portal to local clients
	// Origin is "config" for a resource the node's config file owns, empty for one made
	// with the CLI.
	Origin string `json:"origin,omitempty"`
	// Refused counts connections (and checks) refused by the outlet, its node or the path;
	// LastRefusal is the reason of the last, at LastRefusalAt.
	Refused       int64      `json:"refused"`
	LastRefusal   string     `json:"last_refusal,omitempty"`
	LastRefusalAt *time.Time `json:"last_refusal_at,omitempty"`
	// Dropped counts, in packet mode, the batches of the clients' packets dropped under
	// back-pressure (the path's link held too much); the clients' TCP sends them again.
	Dropped int64 `json:"dropped,omitempty"`
}

// ConfigApplied is what applying the node's config file did; Errors are the resources
// that failed (the rest was applied).
type ConfigApplied struct {
	File     string   `json:"file"`
	Created  []string `json:"created,omitempty"`
	Deleted  []string `json:"deleted,omitempty"`
	Replaced []string `json:"replaced,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

// Status is the node at a glance.
type Status struct {
	Node     NodeInfo  `json:"node"`
	Project  *Project  `json:"project,omitempty"`
	Inlets   []Inlet   `json:"inlets"`
	Outlets  []Outlet  `json:"outlets"`
	Relays   []Relay   `json:"relays"` // on the hub every relay there, else those this node holds
	Channels []Channel `json:"channels"`
	// Caps is what peers hold against the node's caps, and how often they were refused.
	Caps *CapsStatus `json:"caps,omitempty"`
	// Packets is the outlets' packet-mode flows, once the first one came.
	Packets *PacketStatus `json:"packets,omitempty"`
}

// PacketStatus is a node's packet-mode outlet side: its flow table, and the nftables rules
// that keep its kernel out of the flows' ports.
type PacketStatus struct {
	Flows      int    `json:"flows"`
	Opened     uint64 `json:"opened"`
	Expired    uint64 `json:"expired"`
	Refused    uint64 `json:"refused"`     // SYNs over the table's caps
	Diverted   uint64 `json:"diverted"`    // packets to the flows' ports kept from the kernel's TCP
	KernelRSTs uint64 `json:"kernel_rsts"` // RSTs the kernel sent from the flows' ports anyway, dropped: must stay 0
	Dropped    int64  `json:"dropped"`     // batches of the targets' packets dropped under back-pressure
}

// CapsStatus counts the secure channels peers hold to a node's listener, by members and by
// strangers (at a hub, identities without a valid credential), and the channels and relays
// refused over the caps per identity.
type CapsStatus struct {
	MemberChannels   int    `json:"member_channels"`
	StrangerChannels int    `json:"stranger_channels"`
	Refused          uint64 `json:"refused"`
}
