// Package layering holds the test that keeps the import direction of DESIGN.md §2:
// cmd -> control -> {dataplane, stack} -> {securechannel, tun} -> routing, with internal/
// helpers importable by all and importing none of the layers, and dist/ (the unit files, as
// data) importable by cmd.
package layering
