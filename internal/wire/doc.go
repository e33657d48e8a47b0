// Package wire is the bounded binary reader and writer that every adjacent decoder is built
// on: big-endian integers and length-prefixed byte strings, where each length is checked
// against a caller-given maximum and against what is actually left before anything is
// allocated, and where trailing bytes are an error.
//
// It is not a general serialisation format: each protocol package defines its own layout
// with these primitives and owns its version byte.
package wire
