// Package signals holds what the code does with signal channels: a chan struct{} closed once
// to announce that something happened (done, ready, closed).
package signals
