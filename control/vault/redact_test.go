package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// leaks returns the forms of secret that must not appear in out.
func leaks(out string, secret []byte) []string {
	forms := map[string]string{
		"raw":       string(secret),
		"hex":       hex.EncodeToString(secret[:8]),
		"HEX":       strings.ToUpper(hex.EncodeToString(secret[:8])),
		"base64":    base64.StdEncoding.EncodeToString(secret)[:12],
		"base64url": base64.RawURLEncoding.EncodeToString(secret)[:12],
		"decimal":   strings.Trim(fmt.Sprint(secret[:6]), "[]"),
		"quoted":    strings.Trim(fmt.Sprintf("%q", secret[:8]), `"`),
	}
	var found []string
	for name, f := range forms {
		if strings.Contains(out, f) {
			found = append(found, name)
		}
	}
	return found
}

type holder struct {
	Exported   *Ed25519Key
	unexported Ed25519Key
	x          *X25519Key
	xv         X25519Key
}

func TestRedaction(t *testing.T) {
	v, _ := openVault(t)
	ek, err := v.GenerateEd25519("identity")
	if err != nil {
		t.Fatal(err)
	}
	xk, err := v.GenerateX25519("noise")
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"ed25519 seed":    ek.priv.get()[:32],
		"ed25519 private": ek.priv.get()[:],
		"x25519 private":  xk.priv.get()[:],
	}
	h := holder{Exported: ek, unexported: *ek, x: xk, xv: *xk}
	values := map[string]any{
		"ed25519":  ek,
		"*ed25519": *ek,
		"x25519":   xk,
		"*x25519":  *xk,
		"holder":   h,
		"&holder":  &h,
		"slice":    []any{ek, xk},
	}
	var outs []string
	for name, val := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %p"} {
			outs = append(outs, name+" "+verb+": "+fmt.Sprintf(verb, val, val))
		}
		outs = append(outs, name+" Sprint: "+fmt.Sprint(val))
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("key", "k", val, slog.Group("g", "k", val))
		slog.New(slog.NewJSONHandler(&js, nil)).Info("key", "k", val)
		outs = append(outs, name+" slog text: "+text.String(), name+" slog json: "+js.String())
	}
	outs = append(outs, ek.String(), ek.GoString(), xk.String(), xk.GoString(), ek.LogValue().String(), xk.LogValue().String())
	for _, out := range outs {
		for sname, s := range secrets {
			if found := leaks(out, s); len(found) > 0 {
				t.Errorf("output leaks the %s as %v: %s", sname, found, out)
			}
		}
	}
	// The redacted forms still say which key it is.
	if s := fmt.Sprintf("%v", ek); !strings.Contains(s, "identity") || !strings.Contains(s, hex.EncodeToString(ek.pub)) || !strings.Contains(s, "REDACTED") {
		t.Errorf("%%v of Ed25519Key = %q, want its name, public key and REDACTED", s)
	}
	var text bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("key", "k", xk)
	pub := xk.Public()
	if s := text.String(); !strings.Contains(s, "k.name=noise") || !strings.Contains(s, hex.EncodeToString(pub[:])) {
		t.Errorf("slog of X25519Key = %q, want its name and public key", s)
	}
}
