package hub_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/authority/storetest"
	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/hub"
	"github.com/adjacentnet/adjacent/control/rpc"
)

func authorityRequests() []hub.AuthorityRequest {
	uses := 3
	return []hub.AuthorityRequest{
		hub.Enroll{Secret: [32]byte{1, 2, 3}},
		hub.Credential{},
		hub.Revocations{},
		hub.Ticket{},
		hub.Ticket{Options: authority.TicketOptions{Attributes: map[string]string{"team": "db"}, Relay: "db", Enroller: true, Uses: &uses}},
		hub.MemberList{},
		hub.MemberAdd{Member: storetest.ID(1), Attributes: map[string]string{"team": "db"}},
		hub.MemberAdd{Member: storetest.ID(1)},
		hub.MemberDelete{Member: storetest.ID(2)},
	}
}

// TestAuthorityRequestsRoundTrip: each request decodes to itself, through rpc.Call's JSON
// as through EncodeAuthority, in the wire form members of earlier versions send.
func TestAuthorityRequestsRoundTrip(t *testing.T) {
	for _, req := range authorityRequests() {
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := hub.EncodeAuthority(req)
		if err != nil || !bytes.Equal(b, enc) {
			t.Errorf("%s: json.Marshal %s and EncodeAuthority %s (%v) differ", req.Op(), b, enc, err)
		}
		got, err := hub.DecodeAuthority(b)
		if err != nil || !reflect.DeepEqual(got, req) {
			t.Errorf("%s: decoded %#v, %v; want %#v", b, got, err, req)
		}
	}
	// The wire form of the untyped requests.
	old := `{"op":"member-add","member":"` + string(storetest.ID(1)) + `","attributes":{"team":"db"}}`
	if got, err := hub.DecodeAuthority([]byte(old)); err != nil || !reflect.DeepEqual(got, hub.MemberAdd{Member: storetest.ID(1), Attributes: map[string]string{"team": "db"}}) {
		t.Errorf("old wire form: %#v, %v", got, err)
	}
}

// TestDecodeAuthorityRefuses: requests that are too large, carry unknown fields, fields of
// another operation or data after them, an unknown operation or malformed fields.
func TestDecodeAuthorityRefuses(t *testing.T) {
	id := string(storetest.ID(1))
	many := map[string]string{}
	for i := range credential.MaxAttributes + 1 {
		many[fmt.Sprint("a", i)] = "v"
	}
	manyJSON, _ := json.Marshal(many)
	for _, s := range []string{
		``,
		`null`,
		`[]`,
		`{}`,
		`{"op":"steal"}`,
		`{"op":"credential","extra":1}`,
		`{"op":"credential","member":"` + id + `"}`,
		`{"op":"credential","secret":""}`,
		`{"op":"revocations","attributes":{}}`,
		`{"op":"member-list","ticket":{}}`,
		`{"op":"credential"} {"op":"credential"}`,
		`{"op":"credential"}x`,
		`{"op":"enroll"}`,
		`{"op":"enroll","secret":"AAEC"}`,
		`{"op":"enroll","secret":"` + strings.Repeat("A", 44) + `","member":"` + id + `"}`,
		`{"op":"ticket","ticket":{"relay":"db","owner":"me"}}`,
		`{"op":"ticket","ticket":{"attributes":` + string(manyJSON) + `}}`,
		`{"op":"member-add"}`,
		`{"op":"member-add","member":"not an identifier"}`,
		`{"op":"member-add","member":"` + id + `","attributes":` + string(manyJSON) + `}`,
		`{"op":"member-delete","member":""}`,
		`{"op":"member-delete","member":"` + id + `","attributes":{"a":"b"}}`,
		`{"op":"credential","x":"` + strings.Repeat("A", rpc.MaxMessage) + `"}`,
	} {
		if r, err := hub.DecodeAuthority([]byte(s)); err == nil {
			t.Errorf("%.80s: decoded %#v, want refused", s, r)
		}
	}
}

// FuzzDecodeAuthority: whatever decodes encodes to a form that decodes to the same request.
func FuzzDecodeAuthority(f *testing.F) {
	for _, req := range authorityRequests() {
		b, _ := hub.EncodeAuthority(req)
		f.Add(b)
	}
	f.Add([]byte(`{"op":"enroll","secret":null}`))
	f.Add([]byte(`{"op":"ticket","ticket":{"attributes":{}}}`))
	f.Add([]byte(`{"op":"member-add","member":"` + string(storetest.ID(1)) + `","attributes":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := hub.DecodeAuthority(b)
		if err != nil {
			return
		}
		enc, err := hub.EncodeAuthority(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := hub.DecodeAuthority(enc)
		if err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("%q decoded to %#v, encoded %q, decoded again %#v, %v", b, req, enc, again, err)
		}
	})
}
