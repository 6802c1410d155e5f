package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"fabu.dev/libs/store/storetest"
)

// from signs in as user with password from client address addr (the test server trusts
// 127.0.0.1 as a proxy, so X-Forwarded-For is the client); it returns the status and the
// Retry-After seconds of a 429.
func (a *api) from(addr, user, password string) (int, int) {
	a.t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req, _ := http.NewRequest("POST", a.url+"/api/v1/auth/login", bytes.NewReader(b))
	req.Header.Set("X-Forwarded-For", addr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	resp.Body.Close()
	wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, wait
}

// TestLoginThrottle: failed sign-ins slow down the client that made them, per (name,
// address), with a backoff that grows with each failure up to a cap; and they slow the
// name down for clients with recent failures. Whatever an attacker does, the right
// password from a client without recent failures gets in: nobody can keep the
// administrator out by failing on their name.
func TestLoginThrottle(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			db := storetest.Open(t, driver)
			clk := newClock()
			s := newService(t, db, clk, func(c *Config) { c.TrustedProxies = []string{"127.0.0.1/32"}; c.IPBurst = 1000 })
			addUser(t, db, "u1", "admin", RoleAdmin, alicePassword)
			addUser(t, db, "u2", "carol", RoleUser, "carol's long password")
			// The test is about who may try, not about argon2id: a check of the one right
			// password that costs nothing keeps its hundred sign-ins fast (under -race too).
			var hash string
			db.Table("users").Where("id = 'u1'").Select("password_hash").Scan(&hash)
			s.checkPassword = func(h, pw string) error {
				if h == hash && pw == alicePassword {
					return nil
				}
				return errors.New("wrong password")
			}
			a := serve(t, s)
			const attacker, owner = "203.0.113.66", "198.51.100.1"

			// Five failures are free; the fifth starts the attacker's backoff on this name.
			for i := 1; i <= 5; i++ {
				if st, _ := a.from(attacker, "admin", "guess "+strconv.Itoa(i)); st != http.StatusUnauthorized {
					t.Fatalf("failure %d: %d, want 401", i, st)
				}
			}
			if st, wait := a.from(attacker, "admin", alicePassword); st != http.StatusTooManyRequests || wait != 60 {
				t.Fatalf("attacker right after 5 failures: %d Retry-After %d, want 429 and 60", st, wait)
			}
			if st, _ := a.from(owner, "admin", alicePassword); st != http.StatusOK {
				t.Fatalf("the owner from a clean address while the attacker is throttled: %d, want 200", st)
			}
			// The pair (name, address) is throttled, not the address: the attacker may still
			// try another name.
			if st, _ := a.from(attacker, "carol", "guess"); st != http.StatusUnauthorized {
				t.Errorf("attacker on another name: %d, want 401", st)
			}

			// The attacker keeps failing as soon as allowed: each failure doubles its wait, up
			// to 15 minutes, and the owner still gets in every time.
			for i, want := range []int{120, 240, 480, 900, 900, 900} {
				_, wait := a.from(attacker, "admin", "any")
				clk.Advance(time.Duration(wait) * time.Second)
				if st, _ := a.from(attacker, "admin", "guess again "+strconv.Itoa(i)); st != http.StatusUnauthorized {
					t.Fatalf("attacker after waiting %ds: %d, want 401", wait, st)
				}
				st, got := a.from(attacker, "admin", alicePassword)
				if st != http.StatusTooManyRequests || got != want {
					t.Errorf("attacker after failure %d: %d Retry-After %d, want 429 and %d", 6+i, st, got, want)
				}
				if st, _ := a.from(owner, "admin", alicePassword); st != http.StatusOK {
					t.Fatalf("the owner while the attacker renews its backoff: %d, want 200", st)
				}
			}

			// Failures from many addresses slow the name down for clients with recent
			// failures: one that failed on another name waits, a clean one is still checked
			// (and then is no longer clean).
			for i := 1; i <= 5; i++ {
				if st, _ := a.from("192.0.2."+strconv.Itoa(i), "admin", "guess"); st != http.StatusUnauthorized {
					t.Fatalf("bot %d: %d, want 401", i, st)
				}
			}
			const sprayer, fresh = "203.0.113.77", "203.0.113.88"
			if st, _ := a.from(sprayer, "carol", "guess"); st != http.StatusUnauthorized {
				t.Fatalf("sprayer on carol: %d, want 401", st)
			}
			if st, wait := a.from(sprayer, "admin", "guess"); st != http.StatusTooManyRequests || wait < 1 {
				t.Errorf("a client with a recent failure on a slowed name: %d Retry-After %d, want 429", st, wait)
			}
			if st, _ := a.from(fresh, "admin", "guess"); st != http.StatusUnauthorized {
				t.Errorf("a clean client on a slowed name: %d, want 401 (checked)", st)
			}
			if st, _ := a.from(fresh, "admin", "guess 2"); st != http.StatusTooManyRequests {
				t.Errorf("that client again: %d, want 429", st)
			}
			if st, _ := a.from(owner, "admin", alicePassword); st != http.StatusOK {
				t.Errorf("the owner from a clean address on a slowed name: %d, want 200", st)
			}

			// Once its wait is over, the attacker's right password gets in, and success
			// forgets the failures: four more do not throttle.
			clk.Advance(15*time.Minute + time.Second)
			if st, _ := a.from(attacker, "admin", alicePassword); st != http.StatusOK {
				t.Errorf("after the wait: %d, want 200", st)
			}
			for i := 0; i < 4; i++ {
				a.from(attacker, "admin", "wrong")
			}
			if st, _ := a.from(attacker, "admin", alicePassword); st != http.StatusOK {
				t.Errorf("after 4 failures: %d, want 200", st)
			}
			// Failures are forgotten 15 minutes after the last one (or after the wait it caused).
			for i := 0; i < 4; i++ {
				a.from(attacker, "admin", "wrong")
			}
			clk.Advance(15*time.Minute + time.Second)
			a.from(attacker, "admin", "wrong")
			if st, _ := a.from(attacker, "admin", alicePassword); st != http.StatusOK {
				t.Errorf("4 failures, 15 minutes, 1 failure: %d, want 200", st)
			}

			// Unknown names are throttled the same way, so a 429 does not reveal who exists.
			for i := 0; i < 5; i++ {
				a.from(attacker, "mallory", "whatever pw")
			}
			if st, _ := a.from(attacker, "mallory", "whatever pw"); st != http.StatusTooManyRequests {
				t.Errorf("6th attempt on an unknown name: %d, want 429", st)
			}
		})
	}
}

func TestThrottleAddress(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"198.51.100.7", "198.51.100.7"},
		{"::ffff:198.51.100.7", "::ffff:198.51.100.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"", ""},
		{"not an address", "not an address"},
	} {
		if got := throttleAddress(tt.in); got != tt.want {
			t.Errorf("throttleAddress(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
