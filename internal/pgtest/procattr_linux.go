package pgtest

import "syscall"

// baseProcAttr runs a program as o (nil: as ourselves). The server gets SIGQUIT (immediate
// shutdown) if the test process dies without stopping it, so no server outlives its test.
func baseProcAttr(o *owner) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT}
	if o != nil {
		attr.Credential = &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}
	}
	return attr
}
