package ticket

import (
	"encoding/base64"
	"strings"
	"testing"
)

func sample() *Ticket {
	t := &Ticket{Project: "acme", Hub: "/ip4/10.0.0.1/tcp/4000", Authority: []byte{1, 2, 3}}
	for i := range t.Secret {
		t.Secret[i] = byte(i)
	}
	return t
}

func TestRoundTrip(t *testing.T) {
	in := sample()
	text := in.String()
	if !strings.HasPrefix(text, "adj1:") || strings.ContainsAny(text, " \n") {
		t.Fatalf("ticket text %q is not one prefixed line", text)
	}
	out, err := Parse("  " + text + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != text {
		t.Fatalf("Parse(String()) = %+v, want %+v", out, in)
	}
}

func TestParseErrors(t *testing.T) {
	good := sample().String()
	bad := *sample()
	bad.Project = "Bad Name"
	tests := []struct{ in, want string }{
		{"", "does not start with"},
		{"hello", "does not start with"},
		{truncated(good), "truncated"},
		{good[:len(good)-5], "cut short"},
		{good + "AAAA", "trailing"},
		{"adj1:!!!", "base64url"},
		{bad.String(), "not valid"},
		{"adj1:" + strings.Repeat("A", maxText), "at most"},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%.40q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample().String())
	f.Add("adj1:AQ")
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(tk.String())
		if err != nil || again.String() != tk.String() {
			t.Fatalf("Parse(%q) re-encodes to something that does not parse back: %v", s, err)
		}
		enc := tk.String()
		for i := len(prefix); i < len(enc); i++ {
			if _, err := Parse(enc[:i]); err == nil && i < len(enc)-1 {
				// base64 of a shorter raw form may still decode; the decoder must then
				// reject it as truncated, never accept it.
				t.Fatalf("prefix %q of a valid ticket parsed", enc[:i])
			}
		}
	})
}

// truncated returns the ticket text with the last byte of its raw form removed.
func truncated(text string) string {
	raw, _ := base64.RawURLEncoding.DecodeString(text[len(prefix):])
	return prefix + base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1])
}
