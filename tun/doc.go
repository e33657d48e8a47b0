// Package tun creates and owns TUN devices (golang.zx2c4.com/wireguard/tun) and sets their
// addresses and routes with netlink, removing them when the device is closed. It does not
// parse packets; the stack package does.
package tun
