package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/queue"
)

// backlog puts pending[q] pending and archived[q] archived offload tasks on the queues of node.
func backlog(t *testing.T, opt asynq.RedisClientOpt, node string, pending, archived map[string]int) {
	t.Helper()
	qc := queue.NewClient(opt, queue.Options{Node: node, MaxRetry: 3, Timeout: time.Minute, Dedup: time.Hour})
	defer qc.Close()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	for _, kind := range []string{queue.KindHLS, queue.KindDVR} {
		q := queue.Name(kind, node)
		for i := range pending[q] + archived[q] {
			p := queue.Offload{Kind: kind, Path: fmt.Sprintf("/srs/live/cam%d-%d.ts", i, len(kind)), Key: fmt.Sprintf("live/cam%d.ts", i),
				File: fileid.ID{Dev: 1, Ino: uint64(100 + i), Size: 1 << 20, MtimeNs: 1}, App: "live", Stream: "cam", Hooked: time.Now()}
			if dup, err := qc.Enqueue(context.Background(), p); err != nil || dup {
				t.Fatalf("enqueue %s: dup %v, %v", p.Path, dup, err)
			}
			if i < archived[q] {
				if err := insp.ArchiveTask(q, p.QueueID()); err != nil {
					t.Fatalf("archive on %s: %v", q, err)
				}
			}
		}
	}
}

// chromium finds Debian's chromium, or skips saying why (scripts/tools.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not found: scripts/tools.sh (`make test`) installs Debian's chromium; apt-get install chromium")
	return ""
}

// browse loads url in headless chromium and returns the DOM after the page's scripts ran (or,
// with a png path, takes a screenshot of it). Chromium resolves nothing but 127.0.0.1: the UI's
// web fonts from the internet are not fetched, and nothing leaves the machine.
func browse(t *testing.T, bin, url, png string) string {
	t.Helper()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--virtual-time-budget=15000", "--window-size=1280,720",
	}
	if png != "" {
		args = append(args, "--screenshot="+png, "--hide-scrollbars")
	} else {
		args = append(args, "--dump-dom")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, stderr.String())
	}
	return string(out)
}

// text is the DOM's visible text, tags replaced by single spaces.
func text(dom string) string {
	dom = regexp.MustCompile(`(?s)<(script|style)\b.*?</(script|style)>`).ReplaceAllString(dom, " ")
	dom = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, " ")
	return strings.Join(strings.Fields(dom), " ")
}

// TestMonitorBrowser loads asynq's web UI in headless chromium while a node has a backlog: the
// dashboard names the node's queues with their sizes, a queue's page shows its pending and
// archived counts. The UI is read-only (a change is refused 403, nothing changes) and behind the
// admin token (none: 401; ?token= once: a cookie). MONITOR_SCREENSHOT=docs/monitor.png keeps
// the dashboard's screenshot.
func TestMonitorBrowser(t *testing.T) {
	bin := chromium(t)
	rds := redistest.Start(t)
	opt := asynq.RedisClientOpt{Addr: rds.Addr}
	const node, token = "edge-7", "s3cr/t"
	hls, dvr := queue.Name(queue.KindHLS, node), queue.Name(queue.KindDVR, node)
	pending := map[string]int{hls: 5, dvr: 2}
	archived := map[string]int{hls: 3, dvr: 1}
	backlog(t, opt, node, pending, archived)

	h := New(Options{Token: token, Monitor: MonitorReadOnly, Redis: opt})
	t.Cleanup(func() { h.Close() })
	srv := httptest.NewServer(h) // 127.0.0.1, a free port
	t.Cleanup(srv.Close)

	// The dashboard: every queue of the node in the table, with its size.
	dom := browse(t, bin, srv.URL+"/monitor/?token="+strings.ReplaceAll(token, "/", "%2F"), "")
	txt := text(dom)
	for _, q := range []string{hls, dvr} {
		// A table row: the queue's name, its state, then its size.
		re := regexp.MustCompile(regexp.QuoteMeta(q) + ` (run|paused) (\d+) `)
		m := re.FindStringSubmatch(txt)
		if m == nil {
			t.Fatalf("dashboard: no row for %s in:\n%.3000s", q, txt)
		}
		if want := fmt.Sprint(pending[q] + archived[q]); m[2] != want {
			t.Errorf("dashboard: %s size %s, want %s", q, m[2], want)
		}
	}
	if !strings.Contains(dom, `FLAG_READ_ONLY="true"`) {
		t.Errorf("the page does not tell the UI it is read-only:\n%.3000s", dom)
	}

	// A queue's page: its count of tasks per state.
	txt = text(browse(t, bin, srv.URL+"/monitor/queues/"+hls+"?token="+strings.ReplaceAll(token, "/", "%2F"), ""))
	for state, want := range map[string]int{"Pending": pending[hls], "Archived": archived[hls], "Active": 0, "Retry": 0} {
		m := regexp.MustCompile(`\b` + state + ` (\d+)\b`).FindStringSubmatch(txt)
		if m == nil || m[1] != fmt.Sprint(want) {
			t.Errorf("%s page: %s %v, want %d in:\n%.3000s", hls, state, m, want, txt)
		}
	}

	if png := os.Getenv("MONITOR_SCREENSHOT"); png != "" {
		if !filepath.IsAbs(png) {
			png = filepath.Join("..", png) // relative to the repository, not to admin/
		}
		browse(t, bin, srv.URL+"/monitor/?token="+strings.ReplaceAll(token, "/", "%2F"), png)
		if fi, err := os.Stat(png); err != nil || fi.Size() < 10<<10 {
			t.Fatalf("screenshot %s: %v", png, err)
		}
	}
}

func request(t *testing.T, h http.Handler, method, target string, header ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// TestMonitorToken: the web UI is behind admin.token; ?token= once sets a cookie (not the token
// itself) that opens the UI and nothing else.
func TestMonitorToken(t *testing.T) {
	rds := redistest.Start(t)
	opt := asynq.RedisClientOpt{Addr: rds.Addr}
	hls := queue.Name(queue.KindHLS, "n1")
	backlog(t, opt, "n1", map[string]int{hls: 1}, nil)
	h := New(Options{Token: "s3cr/t", Monitor: MonitorReadOnly, Redis: opt})
	t.Cleanup(func() { h.Close() })

	for _, target := range []string{"/monitor/", "/monitor", "/monitor/api/queues", "/monitor/queues/" + hls + "?token=nope"} {
		res := request(t, h, "GET", target)
		if b := body(t, res); res.StatusCode != 401 || !strings.Contains(b, "/monitor/?token=<admin.token>") {
			t.Errorf("GET %s without token: %d %s, want 401 saying how to log in", target, res.StatusCode, b)
		}
	}
	res := request(t, h, "GET", "/monitor/queues/"+hls+"?token=s3cr%2Ft&tab=pending")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/monitor/queues/"+hls+"?tab=pending" {
		t.Fatalf("login: %d to %q, want 303 to the page without the token", res.StatusCode, res.Header.Get("Location"))
	}
	cs := res.Cookies()
	if len(cs) != 1 || cs[0].Name != CookieName || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode ||
		cs[0].Path != "/monitor" || strings.Contains(cs[0].Value, "s3cr") {
		t.Fatalf("login cookie: %+v", cs)
	}
	cookie := "Cookie"
	res = request(t, h, "GET", "/monitor/api/queues", cookie, cs[0].String())
	if b := body(t, res); res.StatusCode != 200 || !strings.Contains(b, `"`+hls+`"`) {
		t.Errorf("api with the cookie: %d %.500s", res.StatusCode, b)
	}
	if res := request(t, h, "GET", "/monitor/api/queues?token=s3cr%2Ft"); res.StatusCode != 200 {
		t.Errorf("api with ?token=: %d, want 200 (no redirect)", res.StatusCode)
	}
	if res := request(t, h, "GET", "/monitor/", "Authorization", "Bearer s3cr/t"); res.StatusCode != 200 {
		t.Errorf("UI with bearer: %d", res.StatusCode)
	}
	if res := request(t, h, "GET", "/metrics", cookie, cs[0].String()); res.StatusCode != 401 {
		t.Errorf("/metrics with the UI's cookie: %d, want 401", res.StatusCode)
	}
	if res := request(t, h, "GET", "/monitor/", cookie, CookieName+"=s3cr/t"); res.StatusCode != 401 {
		t.Errorf("the token as cookie: %d, want 401", res.StatusCode)
	}
	other := New(Options{Token: "other", Monitor: MonitorReadOnly, Redis: opt})
	t.Cleanup(func() { other.Close() })
	if res := request(t, other, "GET", "/monitor/", cookie, cs[0].String()); res.StatusCode != 401 {
		t.Errorf("cookie of another token: %d, want 401", res.StatusCode)
	}
}

// TestMonitorReadOnly: in read-only mode every change through the UI's API is refused 403 and
// nothing changes in Redis; read-write makes the same calls work, but not from another origin;
// off serves nothing.
func TestMonitorReadOnly(t *testing.T) {
	rds := redistest.Start(t)
	opt := asynq.RedisClientOpt{Addr: rds.Addr}
	hls := queue.Name(queue.KindHLS, "n1")
	backlog(t, opt, "n1", map[string]int{hls: 2}, map[string]int{hls: 3})
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	state := func() (archived int, paused bool) {
		t.Helper()
		qi, err := insp.GetQueueInfo(hls)
		if err != nil {
			t.Fatal(err)
		}
		return qi.Archived, qi.Paused
	}
	changes := []struct{ method, path string }{
		{"DELETE", "/monitor/api/queues/" + hls + "/archived_tasks:delete_all"},
		{"POST", "/monitor/api/queues/" + hls + "/archived_tasks:run_all"},
		{"POST", "/monitor/api/queues/" + hls + ":pause"},
		{"DELETE", "/monitor/api/queues/" + hls},
		{"PUT", "/monitor/api/queues/" + hls},
	}

	ro := New(Options{Monitor: MonitorReadOnly, Redis: opt})
	t.Cleanup(func() { ro.Close() })
	if res := request(t, ro, "GET", "/monitor/api/queues/"+hls); res.StatusCode != 200 {
		t.Fatalf("read-only GET: %d", res.StatusCode)
	}
	for _, c := range changes {
		res := request(t, ro, c.method, c.path)
		if b := body(t, res); res.StatusCode != 403 || !strings.Contains(b, "admin.monitor") {
			t.Errorf("read-only %s %s: %d %s, want 403 naming admin.monitor", c.method, c.path, res.StatusCode, b)
		}
	}
	if a, p := state(); a != 3 || p {
		t.Fatalf("after refused changes: %d archived, paused %v; want 3, false", a, p)
	}

	rw := New(Options{Monitor: MonitorReadWrite, Redis: opt})
	t.Cleanup(func() { rw.Close() })
	if res := request(t, rw, "POST", changes[2].path, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"); res.StatusCode != 403 {
		t.Errorf("read-write pause from another site: %d, want 403", res.StatusCode)
	}
	if _, p := state(); p {
		t.Fatal("paused by a cross-site request")
	}
	if res := request(t, rw, "DELETE", changes[0].path, "Origin", "http://example.com", "Sec-Fetch-Site", "same-origin"); res.StatusCode/100 != 2 {
		t.Errorf("read-write delete_all: %d %s", res.StatusCode, body(t, res))
	}
	if res := request(t, rw, "POST", changes[2].path); res.StatusCode/100 != 2 {
		t.Errorf("read-write pause: %d %s", res.StatusCode, body(t, res))
	}
	if a, p := state(); a != 0 || !p {
		t.Errorf("after read-write changes: %d archived, paused %v; want 0, true", a, p)
	}

	off := New(Options{})
	for _, p := range []string{"/monitor/", "/monitor/api/queues"} {
		if res := request(t, off, "GET", p); res.StatusCode != 404 {
			t.Errorf("monitor off: GET %s %d, want 404", p, res.StatusCode)
		}
	}
}
