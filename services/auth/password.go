package auth

import "fabu.dev/libs/passwd"

// HashPassword returns an argon2id hash of password (libs/passwd).
func HashPassword(password string) (string, error) { return passwd.Hash(password) }

// CheckPassword reports whether password matches hash, in constant time (libs/passwd).
func CheckPassword(hash, password string) error { return passwd.Check(hash, password) }

// CheckStrength refuses passwords too weak to protect a release system (libs/passwd).
func CheckStrength(password string) error { return passwd.CheckStrength(password) }
