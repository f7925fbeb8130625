package webhook_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/webhook"
)

var secret = []byte("whsec-test-0123456789")

// A delivery verifies at a real receiver; the same body under another secret, a changed body or
// a stale timestamp does not.
func TestSignatureVerifies(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.Store([]any{r.Header.Clone(), body})
	}))
	defer srv.Close()
	body := []byte(`{"id":"evt_1","event":"dvr.stored","key":"live/a.flv"}`)
	if err := (webhook.Sender{}).Deliver(context.Background(), webhook.Target{URL: srv.URL, Secret: secret}, "evt_1", "dvr.stored", body); err != nil {
		t.Fatal(err)
	}
	v := got.Load().([]any)
	h, recv := v[0].(http.Header), v[1].([]byte)
	sig := h.Get(webhook.HeaderSignature)
	if h.Get(webhook.HeaderEventID) != "evt_1" || h.Get(webhook.HeaderEvent) != "dvr.stored" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", h)
	}
	now := time.Now()
	if err := webhook.Verify(secret, sig, recv, 5*time.Minute, now); err != nil {
		t.Fatalf("good delivery: %v (header %q)", err, sig)
	}
	if err := webhook.Verify([]byte("other"), sig, recv, 5*time.Minute, now); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("wrong secret: %v, want ErrBadSignature", err)
	}
	tampered := []byte(strings.Replace(string(recv), "a.flv", "b.flv", 1))
	if err := webhook.Verify(secret, sig, tampered, 5*time.Minute, now); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("tampered body: %v, want ErrBadSignature", err)
	}
	if err := webhook.Verify(secret, sig, recv, 5*time.Minute, now.Add(time.Hour)); !errors.Is(err, webhook.ErrTooOld) {
		t.Errorf("replayed an hour later: %v, want ErrTooOld", err)
	}
	// A forged t with the old v1 fails: the timestamp is signed.
	forged := strings.Replace(sig, "t=", "t=9", 1)
	if err := webhook.Verify(secret, forged, recv, 0, now); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("forged timestamp: %v, want ErrBadSignature", err)
	}
	for _, h := range []string{"", "v1=abc", "t=12", "t=x,v1=00"} {
		if err := webhook.Verify(secret, h, recv, 0, now); !errors.Is(err, webhook.ErrNoSignature) {
			t.Errorf("header %q: %v, want ErrNoSignature", h, err)
		}
	}
}

// Each answer is classified: 2xx done, 408/429/5xx and transport errors retried, other 4xx and
// redirects final.
func TestDeliverClassifies(t *testing.T) {
	for _, tc := range []struct {
		code         int
		ok, rejected bool
	}{
		{200, true, false}, {204, true, false}, {400, false, true}, {401, false, true}, {404, false, true},
		{410, false, true}, {302, false, true}, {408, false, false}, {429, false, false}, {500, false, false}, {503, false, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.code == 302 {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(tc.code)
		}))
		err := (webhook.Sender{}).Deliver(context.Background(), webhook.Target{URL: srv.URL, Secret: secret}, "evt", "dvr.stored", []byte(`{}`))
		t.Logf("%d: %v", tc.code, err)
		srv.Close()
		if (err == nil) != tc.ok || errors.Is(err, webhook.ErrRejected) != tc.rejected {
			t.Errorf("%d: err %v, want ok=%v rejected=%v", tc.code, err, tc.ok, tc.rejected)
		}
	}
	// Nothing listens: retried.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = (webhook.Sender{}).Deliver(context.Background(), webhook.Target{URL: "http://" + addr + "/", Secret: secret}, "evt", "dvr.stored", []byte(`{}`))
	if err == nil || errors.Is(err, webhook.ErrRejected) {
		t.Errorf("connection refused: %v, want a retryable error", err)
	}
	// A receiver that never answers: the target's timeout, retried.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices the client leaving only once the body is read
		<-r.Context().Done()
	}))
	defer hang.Close()
	t0 := time.Now()
	err = (webhook.Sender{}).Deliver(context.Background(), webhook.Target{URL: hang.URL, Secret: secret, Timeout: 300 * time.Millisecond}, "evt", "dvr.stored", []byte(`{}`))
	if err == nil || errors.Is(err, webhook.ErrRejected) || time.Since(t0) > 3*time.Second {
		t.Errorf("hung receiver: %v after %s, want a retryable timeout", err, time.Since(t0))
	}
}

func TestPublicURL(t *testing.T) {
	if got := webhook.PublicURL("https://cdn.example.com/{bucket}/{key}", "live", "p/live/cam 1/a#b.mp4"); got != "https://cdn.example.com/live/p/live/cam%201/a%23b.mp4" {
		t.Errorf("got %q", got)
	}
	if got := webhook.PublicURL("", "live", "k"); got != "" {
		t.Errorf("empty template gave %q", got)
	}
}

func TestCheck(t *testing.T) {
	if err := webhook.Check(webhook.Target{URL: "https://app.example.com/h", Secret: secret, Events: []string{"dvr.stored"}}); err != nil {
		t.Error(err)
	}
	for _, bad := range []webhook.Target{
		{URL: "ftp://x/", Secret: secret}, {URL: "https://x/"}, {URL: "https://x/", Secret: secret, Events: []string{"dvr.done"}},
	} {
		if err := webhook.Check(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// A 429 or 503 with Retry-After says when to come back: seconds or an HTTP date.
func TestDeliverRetryAfter(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		code   int
		header string
		want   time.Duration
		has    bool
	}{
		{429, "7", 7 * time.Second, true},
		{503, now.Add(90 * time.Second).UTC().Format(http.TimeFormat), 90 * time.Second, true},
		{429, "", 0, false},
		{500, "soon", 0, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.header != "" {
				w.Header().Set("Retry-After", tc.header)
			}
			w.WriteHeader(tc.code)
		}))
		err := (webhook.Sender{Now: func() time.Time { return now }}).Deliver(context.Background(), webhook.Target{URL: srv.URL, Secret: secret}, "evt", "dvr.stored", []byte(`{}`))
		srv.Close()
		var ra *webhook.RetryAfterError
		got := errors.As(err, &ra)
		if got != tc.has || errors.Is(err, webhook.ErrRejected) || err == nil {
			t.Errorf("%d %q: %v", tc.code, tc.header, err)
			continue
		}
		if got && (ra.Wait < tc.want-time.Second || ra.Wait > tc.want) {
			t.Errorf("%d %q: wait %s, want %s", tc.code, tc.header, ra.Wait, tc.want)
		}
	}
}
