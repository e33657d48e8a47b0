// Package logfile is a size-bounded log file: a writer that appends to PATH and, before a
// write would take it over MaxBytes, renames it to PATH.1 (PATH.1 to PATH.2, and so on,
// dropping the oldest beyond Keep) and starts a new PATH. A node started in the background
// logs through it, so its log cannot fill the disk.
//
// It is not a log framework: no compression, no rotation by time, one process writing.
// Symbolic links are not followed (O_NOFOLLOW), so a link planted at the path fails the
// open instead of making the writer append wherever it points.
package logfile
