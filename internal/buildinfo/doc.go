// Package buildinfo says which build of adjacent is running: the module version, the VCS
// commit it was built from (and whether the tree had uncommitted changes), and the Go
// version, all read from the build information the Go toolchain embeds in every binary.
//
// It reads and formats; it does not stamp anything at build time (no -ldflags -X), so a
// plain `go build` or `go install` gives a truthful answer.
package buildinfo
