// Package doclinks holds a test that keeps the repository's documentation self-contained:
// every link in README.md and docs/ points at a file inside the repository that exists, or
// at a web address, never at a path outside the clone (a clone has nothing beside it).
package doclinks
