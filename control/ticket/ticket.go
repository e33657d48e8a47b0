package ticket

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	"github.com/adjacentnet/adjacent/internal/wire"
)

// prefix starts every ticket's text, so a ticket is recognisable and versioned.
const prefix = "adj1:"

const (
	version      = 1
	maxHub       = 1024
	maxAuthority = 8 << 10
	maxText      = 16 << 10
)

var projectName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidProject reports whether name is a valid project name.
func ValidProject(name string) bool { return projectName.MatchString(name) }

// Ticket is an enrollment ticket.
type Ticket struct {
	Project   string   // project name
	Hub       string   // route text of the hub's listener, e.g. /ip4/10.0.0.1/tcp/4000
	Authority []byte   // the authority's encoded identity history
	Secret    [32]byte // one-time secret; the hub keeps only its hash
}

// String encodes the ticket as one line of text.
func (t *Ticket) String() string {
	b := []byte{version}
	b = wire.AppendString8(b, t.Project)
	b = wire.AppendString16(b, t.Hub)
	b = wire.AppendBytes16(b, t.Authority)
	b = append(b, t.Secret[:]...)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// Parse decodes a ticket's text; surrounding white space is ignored.
func Parse(s string) (*Ticket, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxText {
		return nil, fmt.Errorf("ticket: %d characters, at most %d", len(s), maxText)
	}
	if !strings.HasPrefix(s, prefix) {
		return nil, fmt.Errorf("ticket: does not start with %q; give the ticket text that `adjacent project ticket` printed, or a file holding it", prefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s[len(prefix):])
	if err != nil {
		return nil, fmt.Errorf("ticket: not valid base64url (cut short when copied?): %w", err)
	}
	r := wire.NewReader(raw)
	if v := r.U8("version"); r.Err() == nil && v != version {
		return nil, fmt.Errorf("ticket: not readable (it starts with version %d, this program reads %d): it was changed or cut when copied, or made by a newer adjacent; copy the whole line again, or ask the hub for a new ticket", v, version)
	}
	t := &Ticket{
		Project:   r.String8("project", 63),
		Hub:       r.String16("hub route", maxHub),
		Authority: r.Bytes16("authority identity", maxAuthority),
	}
	copy(t.Secret[:], r.Fixed("secret", len(t.Secret)))
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("ticket: %w; it was changed or cut when copied: copy the whole line again", err)
	}
	if !ValidProject(t.Project) {
		return nil, fmt.Errorf("ticket: project name %q is not valid", t.Project)
	}
	t.Authority = append([]byte(nil), t.Authority...)
	return t, nil
}
