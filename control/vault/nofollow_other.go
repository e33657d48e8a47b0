//go:build !unix

package vault

// oNoFollow is not available here; the Lstat and same-file checks around every open still
// refuse symbolic links.
const oNoFollow = 0
