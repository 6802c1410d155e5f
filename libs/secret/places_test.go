package secret

import (
	"strings"
	"testing"

	"fabu.dev/libs/apperr"
)

func TestCheckBuildSecretName(t *testing.T) {
	for _, ok := range []string{"NPM_TOKEN", "_x", "a1", strings.Repeat("A", 128)} {
		if err := CheckBuildSecretName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1X", "A-B", "A B", "A=B", "$(id)", "HOME", "PATH", "FABU_COMMIT", "LD_PRELOAD", strings.Repeat("A", 129)} {
		if err := CheckBuildSecretName(bad); apperr.CodeOf(err) != apperr.CodeInvalid {
			t.Errorf("%q: %v, want an invalid error", bad, err)
		}
	}
}
