package api

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(Project{Lifetime: Duration(time.Hour)})
	if err != nil || !json.Valid(b) {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["credential_lifetime"] != "1h0m0s" {
		t.Fatalf("Marshal = %s, want credential_lifetime \"1h0m0s\"", b)
	}
	for _, in := range []string{`"1h0m0s"`, `3600000000000`} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != time.Hour {
			t.Errorf("Unmarshal(%s) = %v, %v; want 1h0m0s", in, d, err)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"an hour"`), &d); err == nil {
		t.Errorf("Unmarshal(\"an hour\") = %v, want an error", d)
	}
}
