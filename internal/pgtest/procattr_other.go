//go:build !linux

package pgtest

import "syscall"

// baseProcAttr runs a program as o (nil: as ourselves).
func baseProcAttr(o *owner) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if o != nil {
		attr.Credential = &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}
	}
	return attr
}
