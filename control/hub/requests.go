package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/rpc"
)

// Op names an authority operation on the wire.
type Op string

// The authority's operations.
const (
	OpEnroll       Op = "enroll"
	OpCredential   Op = "credential"
	OpRevocations  Op = "revocations"
	OpTicket       Op = "ticket"
	OpMemberList   Op = "member-list"
	OpMemberAdd    Op = "member-add"
	OpMemberDelete Op = "member-delete"
)

// SecretSize is the size of a ticket's secret, which Enroll carries.
const SecretSize = 32

// AuthorityRequest is one request to the authority service: Enroll, Credential,
// Revocations, Ticket, MemberList, MemberAdd or MemberDelete. Each encodes itself to the
// wire form (json.Marshaler), so rpc.Call sends it as it is.
type AuthorityRequest interface {
	Op() Op
	wire() authorityWire
}

// Enroll asks for membership with a ticket's secret; any identity may ask.
type Enroll struct{ Secret [SecretSize]byte }

// Credential asks for a fresh credential; members only.
type Credential struct{}

// Revocations asks for the revocations in force, each signed by the authority; members only.
// They come in pages of at most MaxRevocationsAnswer, in identifier order: After is "" for
// the first page, then the answer's Next, until Next is "".
type Revocations struct{ After identity.Identifier }

// Ticket asks for a ticket; enrollers only.
type Ticket struct{ Options authority.TicketOptions }

// MemberList asks for the members; enrollers only.
type MemberList struct{}

// MemberAdd adds a member, or sets the attributes of one; enrollers only.
type MemberAdd struct {
	Member     identity.Identifier
	Attributes map[string]string
}

// MemberDelete removes a member and revokes it; enrollers only.
type MemberDelete struct{ Member identity.Identifier }

func (Enroll) Op() Op       { return OpEnroll }
func (Credential) Op() Op   { return OpCredential }
func (Revocations) Op() Op  { return OpRevocations }
func (Ticket) Op() Op       { return OpTicket }
func (MemberList) Op() Op   { return OpMemberList }
func (MemberAdd) Op() Op    { return OpMemberAdd }
func (MemberDelete) Op() Op { return OpMemberDelete }

func (r Enroll) wire() authorityWire   { return authorityWire{Op: OpEnroll, Secret: r.Secret[:]} }
func (Credential) wire() authorityWire { return authorityWire{Op: OpCredential} }
func (r Revocations) wire() authorityWire {
	return authorityWire{Op: OpRevocations, After: string(r.After)}
}
func (r Ticket) wire() authorityWire {
	o := r.Options
	return authorityWire{Op: OpTicket, Ticket: &o}
}
func (MemberList) wire() authorityWire { return authorityWire{Op: OpMemberList} }
func (r MemberAdd) wire() authorityWire {
	return authorityWire{Op: OpMemberAdd, Member: string(r.Member), Attributes: r.Attributes}
}
func (r MemberDelete) wire() authorityWire {
	return authorityWire{Op: OpMemberDelete, Member: string(r.Member)}
}

func (r Enroll) MarshalJSON() ([]byte, error)       { return json.Marshal(r.wire()) }
func (r Credential) MarshalJSON() ([]byte, error)   { return json.Marshal(r.wire()) }
func (r Revocations) MarshalJSON() ([]byte, error)  { return json.Marshal(r.wire()) }
func (r Ticket) MarshalJSON() ([]byte, error)       { return json.Marshal(r.wire()) }
func (r MemberList) MarshalJSON() ([]byte, error)   { return json.Marshal(r.wire()) }
func (r MemberAdd) MarshalJSON() ([]byte, error)    { return json.Marshal(r.wire()) }
func (r MemberDelete) MarshalJSON() ([]byte, error) { return json.Marshal(r.wire()) }

// authorityWire is the JSON form of every authority request: the operation and its fields.
// It is the form members sent before the requests were typed.
type authorityWire struct {
	Op         Op                       `json:"op"`
	Secret     []byte                   `json:"secret,omitempty"`
	Ticket     *authority.TicketOptions `json:"ticket,omitempty"`
	Member     string                   `json:"member,omitempty"`
	Attributes map[string]string        `json:"attributes,omitempty"`
	After      string                   `json:"after,omitempty"` // revocations: the page after this identifier
}

// EncodeAuthority returns the wire form of r.
func EncodeAuthority(r AuthorityRequest) ([]byte, error) { return json.Marshal(r.wire()) }

var errMalformed = errors.New("malformed authority request")

// DecodeAuthority decodes one authority request: at most rpc.MaxMessage bytes, one JSON
// object with no unknown fields, no fields of another operation and nothing after it.
func DecodeAuthority(b []byte) (AuthorityRequest, error) {
	var w authorityWire
	if err := decodeStrict(b, &w); err != nil {
		return nil, err
	}
	if w.After != "" && w.Op != OpRevocations {
		return nil, fmt.Errorf("%w: %s with fields of another operation", errMalformed, w.Op)
	}
	only := func(secret, tkt, member, attrs bool) error {
		if (!secret && w.Secret != nil) || (!tkt && w.Ticket != nil) || (!member && w.Member != "") || (!attrs && w.Attributes != nil) {
			return fmt.Errorf("%w: %s with fields of another operation", errMalformed, w.Op)
		}
		return nil
	}
	switch w.Op {
	case OpEnroll:
		if err := only(true, false, false, false); err != nil {
			return nil, err
		}
		if len(w.Secret) != SecretSize {
			return nil, fmt.Errorf("%w: enroll: a secret of %d bytes, want %d", errMalformed, len(w.Secret), SecretSize)
		}
		var r Enroll
		copy(r.Secret[:], w.Secret)
		return r, nil
	case OpCredential, OpRevocations, OpMemberList:
		if err := only(false, false, false, false); err != nil {
			return nil, err
		}
		switch w.Op {
		case OpCredential:
			return Credential{}, nil
		case OpRevocations:
			if w.After == "" {
				return Revocations{}, nil
			}
			after, err := identity.ParseIdentifier(w.After)
			if err != nil {
				return nil, fmt.Errorf("%w: revocations after: %w", errMalformed, err)
			}
			return Revocations{After: after}, nil
		}
		return MemberList{}, nil
	case OpTicket:
		if err := only(false, true, false, false); err != nil {
			return nil, err
		}
		var r Ticket
		if w.Ticket != nil {
			r.Options = *w.Ticket
		}
		if len(r.Options.Attributes) == 0 {
			r.Options.Attributes = nil // as the wire form has it
		}
		if len(r.Options.Attributes) > credential.MaxAttributes {
			return nil, fmt.Errorf("%w: ticket: %d attributes, at most %d", errMalformed, len(r.Options.Attributes), credential.MaxAttributes)
		}
		return r, nil
	case OpMemberAdd:
		if err := only(false, false, true, true); err != nil {
			return nil, err
		}
		id, err := identity.ParseIdentifier(w.Member)
		if err != nil {
			return nil, fmt.Errorf("member add: %w", err)
		}
		if len(w.Attributes) > credential.MaxAttributes {
			return nil, fmt.Errorf("%w: member add: %d attributes, at most %d", errMalformed, len(w.Attributes), credential.MaxAttributes)
		}
		r := MemberAdd{Member: id, Attributes: w.Attributes}
		if len(r.Attributes) == 0 {
			r.Attributes = nil // as the wire form has it
		}
		return r, nil
	case OpMemberDelete:
		if err := only(false, false, true, false); err != nil {
			return nil, err
		}
		id, err := identity.ParseIdentifier(w.Member)
		if err != nil {
			return nil, fmt.Errorf("member delete: %w", err)
		}
		return MemberDelete{Member: id}, nil
	}
	return nil, fmt.Errorf("unknown authority operation %q", w.Op)
}

// decodeStrict decodes the one JSON value in b into v: bounded, no unknown fields, nothing
// after it.
func decodeStrict(b []byte, v any) error {
	if len(b) > rpc.MaxMessage {
		return fmt.Errorf("%w: %d bytes, at most %d", errMalformed, len(b), rpc.MaxMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the request", errMalformed)
	}
	return nil
}

// authorityEnvelope lets rpc.Request.Decode decode a typed request.
type authorityEnvelope struct{ req AuthorityRequest }

func (e *authorityEnvelope) UnmarshalJSON(b []byte) (err error) {
	e.req, err = DecodeAuthority(b)
	return err
}

// CredentialAnswer carries a credential bundle and what a member needs to know of the
// project: the answer to Enroll and Credential.
type CredentialAnswer struct {
	Credential []byte `json:"credential"`
	Project    string `json:"project"`
}

// RevocationsAnswer is the answer to Revocations: signed events, one per revoked member, and
// Next, the identifier to ask after for the next page, or "" after the last one.
type RevocationsAnswer struct {
	Events [][]byte `json:"events"`
	Next   string   `json:"next,omitempty"`
}

// The relay service's operations.
const (
	OpRelayCreate Op = "create"
	OpRelayDelete Op = "delete"
	OpRelayList   Op = "list"
)

// RelayRequest is one request to the relay service: RelayCreate, RelayDelete or
// RelayList. Each encodes itself to the wire form.
type RelayRequest interface {
	Op() Op
	relayWire() relayWire
}

// RelayCreate registers relay Name pointed at the caller's channel, or moves it there.
type RelayCreate struct{ Name string }

// RelayDelete closes relay Name and frees the name.
type RelayDelete struct{ Name string }

// RelayList asks for the relays with their owners and clients.
type RelayList struct{}

func (RelayCreate) Op() Op { return OpRelayCreate }
func (RelayDelete) Op() Op { return OpRelayDelete }
func (RelayList) Op() Op   { return OpRelayList }

func (r RelayCreate) relayWire() relayWire { return relayWire{Op: OpRelayCreate, Name: r.Name} }
func (r RelayDelete) relayWire() relayWire { return relayWire{Op: OpRelayDelete, Name: r.Name} }
func (RelayList) relayWire() relayWire     { return relayWire{Op: OpRelayList} }

func (r RelayCreate) MarshalJSON() ([]byte, error) { return json.Marshal(r.relayWire()) }
func (r RelayDelete) MarshalJSON() ([]byte, error) { return json.Marshal(r.relayWire()) }
func (r RelayList) MarshalJSON() ([]byte, error)   { return json.Marshal(r.relayWire()) }

// relayWire is the JSON form of every relay request.
type relayWire struct {
	Op   Op     `json:"op"`
	Name string `json:"name,omitempty"`
}

// maxRelayName bounds a relay name on the wire; the service refuses names over 64 (and
// says why).
const maxRelayName = 256

// EncodeRelay returns the wire form of r.
func EncodeRelay(r RelayRequest) ([]byte, error) { return json.Marshal(r.relayWire()) }

// DecodeRelay decodes one relay request, as strictly as DecodeAuthority. The name is
// checked by the service, which tells the caller what a name may be.
func DecodeRelay(b []byte) (RelayRequest, error) {
	var w relayWire
	if err := decodeStrict(b, &w); err != nil {
		return nil, err
	}
	if len(w.Name) > maxRelayName {
		return nil, fmt.Errorf("%w: a relay name of %d bytes", errMalformed, len(w.Name))
	}
	switch w.Op {
	case OpRelayCreate:
		return RelayCreate{Name: w.Name}, nil
	case OpRelayDelete:
		return RelayDelete{Name: w.Name}, nil
	case OpRelayList:
		if w.Name != "" {
			return nil, fmt.Errorf("%w: list with a name", errMalformed)
		}
		return RelayList{}, nil
	}
	return nil, fmt.Errorf("unknown relay operation %q", w.Op)
}

// relayEnvelope lets rpc.Request.Decode decode a typed relay request.
type relayEnvelope struct{ req RelayRequest }

func (e *relayEnvelope) UnmarshalJSON(b []byte) (err error) {
	e.req, err = DecodeRelay(b)
	return err
}
