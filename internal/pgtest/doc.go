// Package pgtest runs a real, throwaway PostgreSQL server for tests: Start initialises a
// cluster in a temporary directory, runs it on a free port of 127.0.0.1, and stops and
// removes it when the test ends. Binaries finds the server programs for tests that run
// psql or postgres themselves. StartServer returns the server, which a test can Stop and
// Start again, on its port with its data, as an outage of the database.
//
// It is for tests only and tuned for speed, not safety (fsync off). When the server
// programs are missing, tests skip; `make test` installs them (Debian package postgresql).
package pgtest
