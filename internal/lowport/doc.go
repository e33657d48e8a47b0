// Package lowport gives tests loopback listeners on ports below Linux's ephemeral range
// (32768 and up), so that a test's fixed-looking port never races the kernel's choice of a
// source port for another test's dial on this shared machine. Tests only.
package lowport
