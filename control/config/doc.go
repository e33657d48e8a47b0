// Package config is the node's declarative configuration: one YAML file that declares the
// node's project (the hub's `project create` settings, or the enrollment ticket of a member),
// its relays, outlets, inlets (classic and transparent) and policies, the group of its API
// socket, its log level and its metrics address.
//
// Decode reads a file strictly: a key the schema does not know, a value of the wrong type or
// a declaration that cannot hold (a bad address, a policy that does not parse, two outlets of
// one name) is an error of the form "FILE:LINE: reason". Diff compares two configs by each
// resource's key (an outlet's name, an inlet's listening address, a relay's name, a policy's
// resource) and says what is to be created, deleted and replaced; a resource whose
// declaration did not change is in none of the three, so the node leaves it and its live
// sessions alone. Marshal writes a Config back as YAML that Decode accepts.
//
// The package decides nothing about a running node: control/node applies a Diff with its
// create and delete calls, and remembers which resources the file owns.
package config
