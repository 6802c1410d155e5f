package gitee

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/testenv"
)

// v6Secret is the secret of vectors V6–V8 (PROTOCOLS.md §0).
const v6Secret = "bBg5lrt03VixkX85CNqYIcecC0SIGASE"

func signed(ts, token string) http.Header {
	h := http.Header{}
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderToken, token)
	h.Set(HeaderEvent, EventPushHook)
	return h
}

func msTime(t testing.TB, ts string) time.Time {
	t.Helper()
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.UnixMilli(ms)
}

func TestSignVectors(t *testing.T) {
	tests := []struct {
		name, ts, want string
	}{
		{"V6", "1633679083918", "Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck="},
		{"V7 correct token", "1633679083917", "MqX11Hlmrjlg0kIizOxxJVE2oj3pptPw/VKaMRdYIzA="},
	}
	for _, tt := range tests {
		if got := Sign(v6Secret, tt.ts); got != tt.want {
			t.Errorf("%s: Sign = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	const v6ts, v6tok = "1633679083918", "Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck="
	now := msTime(t, v6ts)
	tests := []struct {
		name    string
		h       http.Header
		secret  string
		now     time.Time
		wantErr error
	}{
		{"V6", signed(v6ts, v6tok), v6Secret, now, nil},
		{"V6 URL-encoded", signed(v6ts, url.QueryEscape(v6tok)), v6Secret, now, nil},
		{"V6 lowercase %3d", signed(v6ts, "Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck%3d"), v6Secret, now, nil},
		{"V7 V6 token one ms off", signed("1633679083917", v6tok), v6Secret, now, forge.ErrSignature},
		{"V7 correct token", signed("1633679083917", "MqX11Hlmrjlg0kIizOxxJVE2oj3pptPw/VKaMRdYIzA="), v6Secret, now, nil},
		{"V7 correct token URL-encoded", signed("1633679083917", "MqX11Hlmrjlg0kIizOxxJVE2oj3pptPw%2FVKaMRdYIzA%3D"), v6Secret, now, nil},
		{"wrong secret", signed(v6ts, v6tok), v6Secret + "x", now, forge.ErrSignature},
		{"empty secret", signed(v6ts, v6tok), "", now, forge.ErrSignature},
		{"empty token", signed(v6ts, ""), v6Secret, now, forge.ErrSignature},
		{"no timestamp", signed("", v6tok), v6Secret, now, forge.ErrSignature},
		{"timestamp not a number", signed("16336790839l8", v6tok), v6Secret, now, forge.ErrSignature},
		{"password as token", signed(v6ts, v6Secret), v6Secret, now, forge.ErrSignature},
		{"token without padding", signed(v6ts, v6tok[:len(v6tok)-1]), v6Secret, now, forge.ErrSignature},
		{"token in seconds timestamp", signed("1633679083", Sign(v6Secret, "1633679083")), v6Secret, now, forge.ErrStale},
		{"stale: 1h+1ms old", signed(v6ts, v6tok), v6Secret, now.Add(time.Hour + time.Millisecond), forge.ErrStale},
		{"stale: 1h+1ms ahead", signed(v6ts, v6tok), v6Secret, now.Add(-time.Hour - time.Millisecond), forge.ErrStale},
		{"stale: a day old", signed(v6ts, v6tok), v6Secret, now.Add(24 * time.Hour), forge.ErrStale},
		{"fresh: exactly 1h old", signed(v6ts, v6tok), v6Secret, now.Add(time.Hour), nil},
		{"fresh: exactly 1h ahead", signed(v6ts, v6tok), v6Secret, now.Add(-time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verifier{}.Verify(tt.h, nil, tt.secret, tt.now)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			if err != nil && apperr.CodeOf(err) != apperr.CodeUnauthorized {
				t.Errorf("code = %s, want unauthorized", apperr.CodeOf(err))
			}
		})
	}
}

// TestVerifyRealCaptures is V8: every real delivery's own timestamp and sign verify with
// the V6 secret, and fail with any other.
func TestVerifyRealCaptures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testenv.FixturesDir(t), "gitee", "*.json"))
	if err != nil || len(files) != 7 {
		t.Fatalf("want the 7 gitee captures, found %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var p struct{ Timestamp, Sign string }
			if err := json.Unmarshal(testenv.Fixture(t, "gitee/"+filepath.Base(f)), &p); err != nil {
				t.Fatal(err)
			}
			h, now := signed(p.Timestamp, p.Sign), msTime(t, p.Timestamp)
			if err := (Verifier{}).Verify(h, nil, v6Secret, now); err != nil {
				t.Errorf("Verify = %v, want nil", err)
			}
			if err := (Verifier{}).Verify(h, nil, "another-secret", now); !errors.Is(err, forge.ErrSignature) {
				t.Errorf("Verify with another secret = %v, want ErrSignature", err)
			}
			if err := (Verifier{Mode: ModePassword}).Verify(h, nil, v6Secret, now); !errors.Is(err, forge.ErrSignature) {
				t.Errorf("password-mode Verify of a signature = %v, want ErrSignature", err)
			}
		})
	}
}

func TestVerifyHeaderFiles(t *testing.T) {
	body := testenv.Fixture(t, "gitee/push_hook.go-scm.json")
	tests := []struct {
		file    string
		wantErr error
	}{
		{"gitee/push_hook.go-scm.headers.txt", nil},
		{"gitee/push_hook.go-scm.badsig.headers.txt", forge.ErrSignature},
	}
	for _, tt := range tests {
		h := canonical(testenv.FixtureHeaders(t, tt.file))
		// The receiver's clock is the valid capture's own time, so only the MAC decides.
		now := msTime(t, "1633679083918")
		err := Verifier{}.Verify(h, body, v6Secret, now)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("%s: Verify = %v, want %v", tt.file, err, tt.wantErr)
		}
	}
}

func TestVerifyPassword(t *testing.T) {
	const pw = "123asdas123"
	now := time.Now()
	tests := []struct {
		name, token, secret string
		ts                  string
		ok                  bool
	}{
		{"match", pw, pw, "", true},
		{"match with any timestamp", pw, pw, "1", true},
		{"wrong", "123asdas124", pw, "", false},
		{"prefix", "123asdas12", pw, "", false},
		{"longer", pw + "3", pw, "", false},
		{"case", "123ASDAS123", pw, "", false},
		{"empty token", "", pw, "", false},
		{"empty secret and token", "", "", "", false},
		{"empty secret", pw, "", "", false},
		{"signature of the secret", Sign(pw, "1633679083918"), pw, "1633679083918", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set(HeaderToken, tt.token)
			if tt.ts != "" {
				h.Set(HeaderTimestamp, tt.ts)
			}
			err := Verifier{Mode: ModePassword}.Verify(h, nil, tt.secret, now)
			if tt.ok != (err == nil) {
				t.Fatalf("Verify = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, forge.ErrSignature) {
				t.Errorf("err = %v, want ErrSignature", err)
			}
			// The same header must never pass in signature mode: a password is no signature.
			if err := (Verifier{}).Verify(h, nil, tt.secret, now); err == nil {
				t.Errorf("signature-mode Verify accepted a password delivery")
			}
		})
	}
}

func TestVerifyUnknownMode(t *testing.T) {
	h := signed("1633679083918", "Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck=")
	err := Verifier{Mode: Mode(7)}.Verify(h, nil, v6Secret, msTime(t, "1633679083918"))
	if !errors.Is(err, forge.ErrSignature) {
		t.Fatalf("Verify with unknown mode = %v, want ErrSignature", err)
	}
}

// FuzzVerify checks that only the true token verifies: in signature mode the signature of
// the timestamp (plain or URL-encoded), in password mode the secret itself.
func FuzzVerify(f *testing.F) {
	f.Add("Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck=", "1633679083918", v6Secret, false)
	f.Add("Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck%3D", "1633679083918", v6Secret, false)
	f.Add("Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck=", "1633679083917", v6Secret, false)
	f.Add("secret", "", "secret", true)
	f.Add("", "", "", true)
	f.Add("%zz", "-1", "s", false)
	f.Fuzz(func(t *testing.T, token, ts, secret string, password bool) {
		h := http.Header{}
		h.Set(HeaderToken, token)
		h.Set(HeaderTimestamp, ts)
		ms, tsErr := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
		now := time.UnixMilli(ms)
		v := Verifier{}
		if password {
			v.Mode = ModePassword
		}
		err := v.Verify(h, nil, secret, now)
		if err == nil {
			got := strings.TrimSpace(token) // as net/http would hand it over
			switch {
			case secret == "" || got == "":
				t.Fatalf("empty secret or token verified")
			case password && got != secret:
				t.Fatalf("password mode accepted %q for secret %q", got, secret)
			case !password && tsErr != nil:
				t.Fatalf("signature mode accepted timestamp %q", ts)
			case !password:
				want := Sign(secret, strings.TrimSpace(ts))
				dec, _ := url.PathUnescape(got)
				if got != want && dec != want {
					t.Fatalf("signature mode accepted %q, true token %q", got, want)
				}
			}
		}
		if err != nil && !errors.Is(err, forge.ErrSignature) && !errors.Is(err, forge.ErrStale) {
			t.Fatalf("error %v is neither ErrSignature nor ErrStale", err)
		}
	})
}

// WithMode gives the verifier of the mode a project stores, and only that mode: a
// password-mode verifier refuses a signature and the other way round.
func TestWithMode(t *testing.T) {
	const secret = "a-gitee-hook-password"
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	pw, sig := signed(ts, secret), signed(ts, Sign(secret, ts))
	tests := []struct {
		mode            string
		pwOK, sigOK     bool
		wantInvalidMode bool
	}{
		{mode: "", sigOK: true},
		{mode: ModeNameSignature, sigOK: true},
		{mode: ModeNamePassword, pwOK: true},
		{mode: "Password", wantInvalidMode: true},
		{mode: "0", wantInvalidMode: true},
	}
	for _, tt := range tests {
		v, err := Verifier{}.WithMode(tt.mode)
		if tt.wantInvalidMode {
			if !apperr.Is(err, apperr.CodeInvalid) {
				t.Errorf("WithMode(%q) = %v, want an invalid error", tt.mode, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("WithMode(%q): %v", tt.mode, err)
		}
		now := time.Now()
		if got := v.Verify(pw, nil, secret, now) == nil; got != tt.pwOK {
			t.Errorf("mode %q: password accepted = %v, want %v", tt.mode, got, tt.pwOK)
		}
		if got := v.Verify(sig, nil, secret, now) == nil; got != tt.sigOK {
			t.Errorf("mode %q: signature accepted = %v, want %v", tt.mode, got, tt.sigOK)
		}
	}
}
