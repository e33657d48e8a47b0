package dist

import (
	_ "embed"
	"strings"
)

// Unit is the systemd unit, to be installed as /lib/systemd/system/adjacent.service.
//
//go:embed systemd/adjacent.service
var Unit string

// UnitName is the unit's file name.
const UnitName = "adjacent.service"

// Sysusers is the sysusers.d(5) entry for the service's user, to be installed as
// /usr/lib/sysusers.d/adjacent.conf.
//
//go:embed sysusers.d/adjacent.conf
var Sysusers string

// ExecStart returns the words of the unit's ExecStart= line: the binary and its arguments.
// The unit quotes nothing, so words are split on spaces.
func ExecStart() []string {
	for _, line := range strings.Split(Unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
			return strings.Fields(v)
		}
	}
	return nil
}
