package container

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// manifestTypes are the manifest media types a registry may hold for an image.
var manifestTypes = strings.Join([]string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")

// HasManifest asks ref's registry (the distribution API: HEAD /v2/<name>/manifests/<digest>)
// whether it still holds ref, over http when insecure and https otherwise. With a user it
// answers a Basic challenge, or a Bearer one by fetching a pull token from the realm the
// registry names. nil means the registry has the manifest.
func HasManifest(ctx context.Context, client *http.Client, ref Ref, insecure bool, user, password string) error {
	registry, name, err := ParseRepository(ref.Repository)
	if err != nil {
		return err
	}
	scheme := "https"
	if insecure {
		scheme = "http"
	}
	u := scheme + "://" + registry + "/v2/" + name + "/manifests/" + ref.Digest
	status, challenge, err := headManifest(ctx, client, u, "")
	if err != nil {
		return err
	}
	if status == http.StatusUnauthorized && user != "" {
		auth := ""
		switch scheme, params := parseChallenge(challenge); scheme {
		case "basic":
			req, _ := http.NewRequest(http.MethodGet, "/", nil)
			req.SetBasicAuth(user, password)
			auth = req.Header.Get("Authorization")
		case "bearer":
			tok, err := bearerToken(ctx, client, params, name, user, password)
			if err != nil {
				return err
			}
			auth = "Bearer " + tok
		}
		if auth != "" {
			if status, _, err = headManifest(ctx, client, u, auth); err != nil {
				return err
			}
		}
	}
	switch status {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		return fmt.Errorf("the registry no longer has %s", ref)
	default:
		return fmt.Errorf("the registry answered %d for %s", status, ref)
	}
}

func headManifest(ctx context.Context, client *http.Client, u, auth string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Accept", manifestTypes)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("ask the registry: %w", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), nil
}

// parseChallenge reads `Bearer realm="…",service="…"` into its scheme (lower case) and
// parameters.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			params[strings.ToLower(k)] = strings.Trim(v, `"`)
		}
	}
	return strings.ToLower(scheme), params
}

// bearerToken fetches a pull token for repository name from the challenge's realm.
func bearerToken(ctx context.Context, client *http.Client, params map[string]string, name, user, password string) (string, error) {
	realm, err := url.Parse(params["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") {
		return "", fmt.Errorf("the registry's token realm %q is not a URL", params["realm"])
	}
	q := realm.Query()
	if params["service"] != "" {
		q.Set("service", params["service"])
	}
	q.Set("scope", "repository:"+name+":pull")
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(user, password)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("registry token: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("registry token: status %d", resp.StatusCode)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("registry token: %w", err)
	}
	if body.Token != "" {
		return body.Token, nil
	}
	if body.AccessToken != "" {
		return body.AccessToken, nil
	}
	return "", fmt.Errorf("registry token: empty")
}
