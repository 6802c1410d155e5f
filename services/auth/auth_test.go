package auth

import (
	"context"
	"strings"
	"testing"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/store/storetest"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Errorf("hash %q is not argon2id in PHC format", h)
	}
	if err := CheckPassword(h, "correct horse battery"); err != nil {
		t.Errorf("CheckPassword(right) = %v", err)
	}
	if err := CheckPassword(h, "correct horse batterx"); err == nil {
		t.Error("CheckPassword(wrong) = nil")
	}
	h2, _ := HashPassword("correct horse battery")
	if h2 == h {
		t.Error("two hashes of one password are equal: salt missing")
	}
	if err := CheckPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Error("CheckPassword accepted a non-argon2id hash")
	}
}

func TestCheckStrength(t *testing.T) {
	for _, tt := range []struct {
		pw string
		ok bool
	}{{"", false}, {"short", false}, {"          ", false}, {"long enough pw", true}, {"密码密码密码密码密码", true}, {strings.Repeat("x", 257), false}} {
		if err := CheckStrength(tt.pw); (err == nil) != tt.ok {
			t.Errorf("CheckStrength(%q) = %v, want ok=%v", tt.pw, err, tt.ok)
		}
	}
}

func TestLoginAndFirstAdmin(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			db := storetest.Open(t, driver)
			ctx := context.Background()
			s := newService(t, db, nil)
			if _, err := s.EnsureAdmin(ctx, "weak"); err == nil {
				t.Fatal("EnsureAdmin accepted a weak password")
			}
			pw, err := s.EnsureAdmin(ctx, "")
			if err != nil || len(pw) < 20 {
				t.Fatalf("EnsureAdmin generated %q, %v", pw, err)
			}
			if again, err := s.EnsureAdmin(ctx, "another password"); err != nil || again != "" {
				t.Fatalf("second EnsureAdmin = %q, %v; want nothing created", again, err)
			}
			tok, err := s.Login(ctx, "admin", pw)
			if err != nil || tok.User.Role != RoleAdmin || tok.AccessToken == "" || tok.Token != tok.AccessToken || tok.RefreshToken == "" {
				t.Fatalf("Login = %+v %v", tok, err)
			}
			var stored []string
			if err := db.Table("auth_refresh_tokens").Pluck("token_hash", &stored).Error; err != nil {
				t.Fatal(err)
			}
			if len(stored) != 1 || stored[0] != HashToken(tok.RefreshToken) || strings.Contains(stored[0], tok.RefreshToken) {
				t.Errorf("stored refresh tokens %v: want only the hash of the issued token", stored)
			}
			for _, bad := range []struct{ user, pw string }{{"admin", pw + "x"}, {"nobody", pw}, {"admin", ""}, {"", ""}} {
				_, err := s.Login(ctx, bad.user, bad.pw)
				if !apperr.Is(err, apperr.CodeUnauthorized) || err.Error() != "wrong username or password" {
					t.Errorf("Login(%q, …) = %v, want the one unauthorized error", bad.user, err)
				}
			}
		})
	}
}
