//go:build !linux

package node

// capability is a Linux capability; elsewhere the operation itself reports what is missing.
type capability struct{ name string }

var capNetAdmin = capability{"CAP_NET_ADMIN"}

func (c capability) need(what string) error { return nil }

func openTunDevice() error { return nil }
