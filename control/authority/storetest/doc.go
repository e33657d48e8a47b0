// Package storetest is the conformance suite for authority.Store implementations: every
// implementation's tests call Run. It is test support only; nothing in a program imports it.
package storetest
