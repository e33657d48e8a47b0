package node

import (
	"strings"
	"testing"
)

func TestCheckMetricsAddr(t *testing.T) {
	for _, tt := range []struct {
		addr   string
		public bool
		want   string // "" for accepted
	}{
		{"127.0.0.1:9100", false, ""},
		{"127.0.0.53:9100", false, ""},
		{"[::1]:9100", false, ""},
		{"localhost:9100", false, ""},
		{"0.0.0.0:9100", false, "not a loopback address"},
		{":9100", false, "not a loopback address"},
		{"10.0.0.5:9100", false, "--metrics-allow-public"},
		{"[::]:9100", false, "without authentication"},
		{"example.com:9100", false, "not a loopback address"},
		{"0.0.0.0:9100", true, ""},
		{"9100", false, "want HOST:PORT"},
	} {
		err := CheckMetricsAddr(tt.addr, tt.public)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckMetricsAddr(%q, %v) = %v, want %q", tt.addr, tt.public, err, tt.want)
		}
	}
}
