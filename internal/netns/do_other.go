//go:build !linux

package netns

import "errors"

// Do runs f in the network namespace ns; network namespaces exist only on Linux.
func Do(ns string, f func() error) error {
	if ns == "" {
		return f()
	}
	return errors.New("netns: network namespaces are not supported on this platform")
}
