//go:build !unix

package home

// oNoFollow is not available here; Check's Lstat of every file before the node starts
// still refuses symbolic links.
const oNoFollow = 0
