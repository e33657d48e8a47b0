// Command adjacent is the CLI and the node daemon entry point. It is thin: it parses flags,
// calls the node's local API (starting the node in the background when needed) or the
// control packages, and prints the answer as text or, with --output json, as JSON.
package main
