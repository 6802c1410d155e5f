package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// credentials is the saved login, in $XDG_CONFIG_HOME/fabu/credentials.json.
type credentials struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// credentialsPath returns where the login is saved: under $XDG_CONFIG_HOME, else ~/.config.
func credentialsPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(dir) { // the XDG spec says to ignore relative paths
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the credentials file: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "fabu", "credentials.json"), nil
}

// loadCredentials reads the saved login; the error wraps fs.ErrNotExist when there is none.
// A file others may read is refused, as ssh does with keys.
func loadCredentials() (credentials, error) {
	path, err := credentialsPath()
	if err != nil {
		return credentials{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return credentials{}, fmt.Errorf("read saved login: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return credentials{}, fmt.Errorf("%s may be read by others (mode %v): chmod 600 it or log in again", path, fi.Mode().Perm())
	}
	var c credentials
	if err := json.NewDecoder(f).Decode(&c); err != nil {
		return credentials{}, fmt.Errorf("read saved login %s: %w", path, err)
	}
	return c, nil
}

// saveCredentials writes the login atomically with mode 0600 in a 0700 directory and
// returns the file's path.
func saveCredentials(c credentials) (path string, err error) {
	path, err = credentialsPath()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("save login: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("save login: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", fmt.Errorf("save login: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*.json") // created with mode 0600
	if err != nil {
		return "", fmt.Errorf("save login: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	_, werr := tmp.Write(append(b, '\n'))
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Sync(), tmp.Close()); err != nil {
		return "", fmt.Errorf("save login: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("save login: %w", err)
	}
	return path, nil
}
