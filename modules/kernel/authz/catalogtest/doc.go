// Package catalogtest holds no code: its test checks the catalogue of
// actions (authz.Actions) against the endpoints the binary registers. It
// imports the modules' ports, which the kernel's own packages and their
// tests never do.
package catalogtest
