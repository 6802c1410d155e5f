package main

import (
	"fabu.dev/libs/forge"
	"fabu.dev/libs/forge/gitee"
	"fabu.dev/libs/forge/github"
	"fabu.dev/libs/forge/gitlab"
)

// verifiers are the platforms whose deliveries the webhook service reads. Gitee hooks are
// verified in signature mode, the mode fabu installs them in; password mode would accept a
// leaked header alone.
func verifiers() []forge.Verifier {
	return []forge.Verifier{gitlab.Verifier{}, github.Verifier{}, gitee.Verifier{Mode: gitee.ModeSignature}}
}
