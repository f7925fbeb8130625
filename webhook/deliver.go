package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Target is one receiver.
type Target struct {
	URL string
	// Secret signs the deliveries (from the environment variable the config names).
	Secret []byte
	// Events are the events it gets; empty: all.
	Events []string
	// Timeout bounds one delivery (default 10 s).
	Timeout time.Duration
}

// ID names the target in tasks without its URL, which may carry a token.
func (t Target) ID() string {
	h := sha256.Sum256([]byte(t.URL))
	return "wh-" + hex.EncodeToString(h[:8])
}

// Wants reports whether the target subscribed to event.
func (t Target) Wants(event string) bool {
	return len(t.Events) == 0 || slices.Contains(t.Events, event)
}

// Check refuses a target that cannot work.
func Check(t Target) error {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url: want an http:// or https:// URL")
	}
	if len(t.Secret) == 0 {
		return errors.New("secret_env: the variable it names is empty or not set; deliveries must be signed")
	}
	for _, e := range t.Events {
		if !slices.Contains(Events, e) {
			return fmt.Errorf("events: unknown event %q (known: %v)", e, Events)
		}
	}
	return nil
}

// Events are the events there are.
var Events = []string{"dvr.stored", "vod.stored", "mp4.stored", "poster.stored", "session_mp4.stored"}

// ErrRejected means the receiver refused the event for good (a 4xx other than 408 and 429, or
// a redirect): it is not sent again.
var ErrRejected = errors.New("webhook: rejected by the receiver")

// Sender delivers events.
type Sender struct {
	// Client is the HTTP client (default: one that follows no redirect).
	Client *http.Client
	// Now is the clock of the signatures (default time.Now).
	Now func() time.Time
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Deliver POSTs one event's body to t. It returns nil on a 2xx, an error wrapping ErrRejected
// when retrying is pointless, and any other error when a later delivery may succeed.
func (s Sender) Deliver(ctx context.Context, t Target, id, event string, body []byte) error {
	c, now := s.Client, s.Now
	if c == nil {
		c = noRedirects
	}
	if now == nil {
		now = time.Now
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w: %w", redact(t.URL), err, ErrRejected)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "srs-offload")
	req.Header.Set(HeaderEventID, id)
	req.Header.Set(HeaderEvent, event)
	req.Header.Set(HeaderSignature, Sign(t.Secret, now(), body))
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", redact(t.URL), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		err := fmt.Errorf("webhook %s: %s %q", redact(t.URL), resp.Status, msg)
		if wait, ok := retryAfter(resp.Header.Get("Retry-After"), now()); ok {
			return &RetryAfterError{Wait: wait, Err: err}
		}
		return err
	default:
		return fmt.Errorf("webhook %s: %s %q: %w", redact(t.URL), resp.Status, msg, ErrRejected)
	}
}

// redact is a URL as it may be logged: without userinfo and query (tokens live there).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(bad url)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

// RetryAfterError is a retryable answer that said when to come back (Retry-After).
type RetryAfterError struct {
	Wait time.Duration
	Err  error
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("%v (retry after %s)", e.Err, e.Wait) }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
