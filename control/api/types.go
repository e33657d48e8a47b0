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
}
