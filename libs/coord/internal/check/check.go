// Package check validates the arguments of coord operations the same way for every
// implementation.
package check

import (
	"fmt"
	"time"

	"fabu.dev/libs/coord"
)

// TTL rejects leases shorter than coord.MinTTL.
func TTL(ttl time.Duration) error {
	if ttl < coord.MinTTL {
		return fmt.Errorf("ttl %v under %v: %w", ttl, coord.MinTTL, coord.ErrInvalid)
	}
	return nil
}

// Names rejects empty names; args alternate a name's role and its value.
func Names(args ...string) error {
	for i := 0; i+1 < len(args); i += 2 {
		if args[i+1] == "" {
			return fmt.Errorf("empty %s: %w", args[i], coord.ErrInvalid)
		}
	}
	return nil
}

// Lease rejects a lease without key or owner.
func Lease(l coord.Lease) error {
	return Names("key", l.Key, "owner", l.Owner)
}
