// Package ratelog logs an event that can repeat without bound, such as a connection refused
// under a flood, as at most one line per interval with a count, instead of one line per event.
//
// It is not a general log sampler: one Logger stands for one kind of event at one place
// (a listener's refusals), and what it keeps of the events it does not print is their number
// and the attributes of the last one.
package ratelog
