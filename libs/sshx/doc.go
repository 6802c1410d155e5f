// Package sshx connects to target hosts over SSH with pinned host keys and runs remote
// commands built only from fixed templates and validated, quoted arguments (design
// principles 7 and 8).
//
// A Target names one host and the one host key it must present; Dial refuses any other key
// and any target without a pinned key. A Command is a constant template plus Args made by
// PathArg, NameArg, TextArg or ModeArg, each validated and passed through Quote, so data never
// reaches the remote shell as code.
package sshx
