package rstguard

import (
	"errors"
	"fmt"
)

// ErrNotSupported is returned by Install on systems other than Linux.
var ErrNotSupported = errors.New("rstguard: nftables rules are not supported on this platform (packet-mode outlets need Linux on a 64-bit architecture)")

// Config says which ports the rules cover.
type Config struct {
	First, Last uint16 // the node's flow ports, inclusive; required
	// Mark is the SO_MARK of the node's injector: RSTs from the range carrying it are the
	// clients' own and pass. Zero: every RST from the range is dropped.
	Mark uint32
	// Table names the nftables table [adjacent-raw-FIRST-LAST].
	Table string
}

// Counters are the rules' packet counts since Install.
type Counters struct {
	Diverted uint64 // packets to the range kept from the kernel's TCP (input drop)
	RSTs     uint64 // RSTs from the range dropped on output: the kernel answered anyway
}

func (c *Config) check() error {
	if c.First == 0 || c.First > c.Last {
		return fmt.Errorf("rstguard: port range %d-%d: want 0 < first <= last", c.First, c.Last)
	}
	if c.Table == "" {
		c.Table = fmt.Sprintf("adjacent-raw-%d-%d", c.First, c.Last)
	}
	return nil
}
