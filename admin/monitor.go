package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// MonitorPath is where asynq's web UI (asynqmon) is served on the admin listener.
const MonitorPath = "/monitor"

// CookieName is the cookie that carries the admin token for the web UI: a browser cannot send
// a bearer header, so /monitor/?token=<token> sets it once and redirects to the same page
// without the token in its address.
const CookieName = "srs_offload_admin"

// Monitor is how much the web UI may do.
type Monitor int

const (
	// MonitorOff serves no web UI.
	MonitorOff Monitor = iota
	// MonitorReadOnly shows the queues and tasks; every request that would change them is
	// refused 403 (asynqmon also hides its buttons).
	MonitorReadOnly
	// MonitorReadWrite lets the UI delete, run and archive tasks and pause queues.
	MonitorReadWrite
)

// ParseMonitor reads admin.monitor: off, read-only or read-write.
func ParseMonitor(s string) (Monitor, error) {
	switch s {
	case "off":
		return MonitorOff, nil
	case "read-only":
		return MonitorReadOnly, nil
	case "read-write":
		return MonitorReadWrite, nil
	}
	return MonitorOff, fmt.Errorf("want off, read-only or read-write, got %q", s)
}

func (m Monitor) String() string {
	return [...]string{"off", "read-only", "read-write"}[m]
}

// monitor wraps asynqmon with the admin token's cookie and the read-only rule.
type monitor struct {
	ui       *asynqmon.HTTPHandler
	mode     Monitor
	token    string
	cookieOK string // the cookie's value when token is set: an HMAC of the token, not the token
}

func newMonitor(mode Monitor, redis asynq.RedisConnOpt, token string) *monitor {
	m := &monitor{mode: mode, token: token}
	m.ui = asynqmon.New(asynqmon.Options{RootPath: MonitorPath, RedisConnOpt: redis, ReadOnly: mode != MonitorReadWrite})
	if token != "" {
		mac := hmac.New(sha256.New, []byte(token))
		mac.Write([]byte("srs-offload admin web UI cookie v1"))
		m.cookieOK = hex.EncodeToString(mac.Sum(nil))
	}
	return m
}

// under reports whether path is the web UI's.
func under(path string) bool {
	return path == MonitorPath || strings.HasPrefix(path, MonitorPath+"/")
}

// cookie reports whether r carries the web UI's cookie for the current token.
func (m *monitor) cookie(r *http.Request) bool {
	if m.token == "" {
		return false
	}
	c, err := r.Cookie(CookieName)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(m.cookieOK)) == 1
}

func (m *monitor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A page opened with ?token= gets the cookie and is sent to the same address without the
	// token (so it is not left in the history, bookmarks or the UI's own links). The API is
	// answered as it is: a script that sends ?token= keeps no cookie.
	if q := r.URL.Query(); m.token != "" && q.Has("token") && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		!strings.HasPrefix(r.URL.Path, MonitorPath+"/api/") {
		http.SetCookie(w, &http.Cookie{Name: CookieName, Value: m.cookieOK, Path: MonitorPath,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		q.Del("token")
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	if r.URL.Path == MonitorPath {
		http.Redirect(w, r, MonitorPath+"/", http.StatusMovedPermanently)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if m.mode != MonitorReadWrite {
			writeJSON(w, http.StatusForbidden, map[string]string{
				"error": "admin.monitor is read-only: " + r.Method + " is refused; set admin.monitor: read-write to change tasks and queues from the web UI"})
			return
		}
		// Read-write: a change must come from the UI's own page, not from another site the
		// browser has open (its cookie is SameSite=Strict, but without admin.token there is
		// no cookie to withhold).
		if !sameOrigin(r) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin change refused"})
			return
		}
	}
	m.ui.ServeHTTP(w, r)
}

// sameOrigin is false for a request a browser marks as sent from another site or origin.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

// Close lets go of the web UI's Redis connections.
func (m *monitor) Close() error { return m.ui.Close() }
