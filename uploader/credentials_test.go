package uploader_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/uploader"
)

// isolateAWS points the SDK's shared files at empty ones and clears the credential variables,
// so that nothing of the machine's own AWS setup is used.
func isolateAWS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config", "credentials"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return dir
}

func putOne(t *testing.T, u *uploader.Uploader) error {
	t.Helper()
	ctx := context.Background()
	if err := u.CheckBucket(ctx); err != nil {
		return err
	}
	_, err := u.Put(ctx, "live/c.ts", strings.NewReader("segment"), 7, media.Type{Kind: media.Segment}, "o")
	return err
}

// storage.profile reads the keys of that profile from the shared credentials file: the profile's
// keys (versitygw's) work, the default profile's (wrong ones) are refused.
func TestProfileCredentials(t *testing.T) {
	srv := s3test.Versity(t)
	dir := isolateAWS(t)
	creds := fmt.Sprintf("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrongwrong\n\n[archive]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		srv.AccessKey, srv.SecretKey)
	if err := os.WriteFile(filepath.Join(dir, "credentials"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		profile string
		ok      bool
	}{{"archive", true}, {"", false}} {
		cfg := srv.Config()
		cfg.AccessKey, cfg.SecretKey, cfg.Credentials.Profile = "", "", c.profile
		u, err := uploader.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := putOne(t, u); (err == nil) != c.ok {
			t.Errorf("profile %q: err = %v, want ok %v", c.profile, err, c.ok)
		}
	}
	// A profile the files do not have is refused when the client is built (check reports it).
	cfg := srv.Config()
	cfg.AccessKey, cfg.SecretKey, cfg.Credentials.Profile = "", "", "nosuch"
	if _, err := uploader.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("missing profile: err = %v", err)
	}
}

// recorder is a reverse proxy that records one header of every request.
type recorder struct {
	mu     sync.Mutex
	header string
	seen   []string
}

func (r *recorder) proxy(t *testing.T, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, req.Header.Get(r.header))
		r.mu.Unlock()
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (r *recorder) values() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// storage.session_token is sent with every request as X-Amz-Security-Token. versitygw refuses
// session tokens (400) and gofakes3 checks no signature, so a recording proxy in front of
// gofakes3 proves it arrives.
func TestSessionToken(t *testing.T) {
	srv := s3test.Fake(t, nil)
	isolateAWS(t)
	rec := &recorder{header: "X-Amz-Security-Token"}
	cfg := srv.Config()
	cfg.Endpoint = rec.proxy(t, srv.Endpoint)
	cfg.Credentials.SessionToken = "session-token-1"
	u, err := uploader.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := putOne(t, u); err != nil {
		t.Fatal(err)
	}
	seen := rec.values()
	if len(seen) < 2 {
		t.Fatalf("%d requests", len(seen))
	}
	for _, v := range seen {
		if v != "session-token-1" {
			t.Errorf("X-Amz-Security-Token %q, want session-token-1 on every request (%q)", v, seen)
		}
	}
}

// stsStub answers AssumeRole and AssumeRoleWithWebIdentity with the given keys, and records the
// requests' forms and Authorization headers. versitygw refuses any request that carries a session
// token (400), so the stub hands out the role's keys without one there.
type stsStub struct {
	ak, sk, token string
	mu            sync.Mutex
	forms         []url.Values
	auth          []string
}

func (s *stsStub) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		s.mu.Lock()
		s.forms = append(s.forms, r.PostForm)
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		action := r.PostForm.Get("Action")
		if action != "AssumeRole" && action != "AssumeRoleWithWebIdentity" {
			http.Error(w, "unknown action "+action, 400)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		token := ""
		if s.token != "" {
			token = "<SessionToken>" + s.token + "</SessionToken>"
		}
		fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult>
<Credentials><AccessKeyId>%[2]s</AccessKeyId><SecretAccessKey>%[3]s</SecretAccessKey>%[4]s<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/offload/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>
</%[1]sResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></%[1]sResponse>`, action, s.ak, s.sk, token)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (s *stsStub) requests() ([]url.Values, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.forms...), append([]string(nil), s.auth...)
}

// storage.role_arn assumes the role with STS, signed with the configured keys (which versitygw
// refuses), and the role's keys (versitygw's) sign the uploads; external_id and session_name are
// sent. The STS endpoint is a local stub (storage.sts_endpoint).
func TestAssumeRole(t *testing.T) {
	srv := s3test.Versity(t)
	isolateAWS(t)
	stub := &stsStub{ak: srv.AccessKey, sk: srv.SecretKey}
	stsURL := stub.start(t)
	cfg := srv.Config()
	cfg.AccessKey, cfg.SecretKey = "BASEKEY", "basesecret"
	cfg.Credentials = uploader.Credentials{RoleARN: "arn:aws:iam::123456789012:role/offload", ExternalID: "ext-1",
		SessionName: "srs-offload-test", STSEndpoint: stsURL}
	u, err := uploader.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := putOne(t, u); err != nil {
		t.Fatal(err)
	}
	forms, auth := stub.requests()
	if len(forms) != 1 {
		t.Fatalf("%d STS requests, want 1 (the credentials are cached)", len(forms))
	}
	f := forms[0]
	if f.Get("Action") != "AssumeRole" || f.Get("RoleArn") != cfg.Credentials.RoleARN || f.Get("ExternalId") != "ext-1" || f.Get("RoleSessionName") != "srs-offload-test" {
		t.Errorf("STS request %v", f)
	}
	if !strings.Contains(auth[0], "Credential=BASEKEY/") {
		t.Errorf("AssumeRole signed with %q, want the configured keys", auth[0])
	}

	// Without STS's answer there are no credentials: the base keys are never used for storage.
	cfg.Credentials.STSEndpoint = "http://127.0.0.1:1"
	u, err = uploader.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := putOne(t, u); err == nil {
		t.Error("upload worked without the role's credentials")
	}
}

// Web identity (IRSA): the token file is sent to AssumeRoleWithWebIdentity, and the role's keys
// sign the uploads, both through storage.role_arn + web_identity_token_file and through the SDK's
// default chain from the environment (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN,
// AWS_ENDPOINT_URL_STS), with no keys configured.
func TestWebIdentity(t *testing.T) {
	srv := s3test.Versity(t)
	for _, viaEnv := range []bool{false, true} {
		dir := isolateAWS(t)
		stub := &stsStub{ak: srv.AccessKey, sk: srv.SecretKey}
		stsURL := stub.start(t)
		tokenFile := filepath.Join(dir, "token")
		if err := os.WriteFile(tokenFile, []byte("jwt-from-kubernetes"), 0o600); err != nil {
			t.Fatal(err)
		}
		role := "arn:aws:iam::123456789012:role/irsa"
		cfg := srv.Config()
		cfg.AccessKey, cfg.SecretKey = "", ""
		if viaEnv {
			t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
			t.Setenv("AWS_ROLE_ARN", role)
			t.Setenv("AWS_ENDPOINT_URL_STS", stsURL)
		} else {
			cfg.Credentials = uploader.Credentials{RoleARN: role, SessionName: "web", WebIdentityTokenFile: tokenFile, STSEndpoint: stsURL}
		}
		u, err := uploader.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := putOne(t, u); err != nil {
			t.Fatalf("env %v: %v", viaEnv, err)
		}
		forms, _ := stub.requests()
		if len(forms) != 1 || forms[0].Get("Action") != "AssumeRoleWithWebIdentity" || forms[0].Get("WebIdentityToken") != "jwt-from-kubernetes" ||
			forms[0].Get("RoleArn") != role {
			t.Errorf("env %v: STS requests %v", viaEnv, forms)
		}
	}
}
