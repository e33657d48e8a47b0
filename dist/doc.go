// Package dist holds what is installed beside the adjacent binary on a machine that runs the
// node as a system service: the systemd unit (systemd/adjacent.service) and the sysusers.d
// entry for its user (sysusers.d/adjacent.conf), embedded so that the binary can write them
// out itself. Its tests hold the unit to `systemd-analyze verify` and to an exposure of at
// most 2.5 in `systemd-analyze security`.
//
// It is data, not code: nothing here starts, installs or configures anything.
package dist
