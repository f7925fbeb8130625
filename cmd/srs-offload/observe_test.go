package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The alert rules and the dashboard in configs/: promtool's unit tests of the rules, and a live
// /metrics of `serve` that must export every metric (and every label matched on) they name.

// TestAlertRulesPromtool runs `promtool check rules` and `promtool test rules` (configs/alerts_test.yml).
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (scripts/tools.sh installs Debian's prometheus): cannot test configs/alerts.yml")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Join("..", "..", "configs")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// scrapeLabels are the labels Prometheus adds when it scrapes: a query may match on them, the
// binary does not export them.
var scrapeLabels = []string{"instance", "job"}

// prometheusSeries are the series Prometheus makes itself, not the binary.
var prometheusSeries = []string{"up"}

// TestObservedMetricsExported runs serve on a real redis-server and S3 with a warming target,
// sends hooks (stored, refused, a recording big enough to show its progress), leaves a file for
// the reconciler, and scrapes /metrics meanwhile and after: every
// metric named by configs/alerts.yml and configs/grafana-dashboard.json must be there, with
// every label the queries match on.
func TestObservedMetricsExported(t *testing.T) {
	var warmed atomic.Int64
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		warmed.Add(1)
		io.WriteString(w, "ok")
	}))
	defer edge.Close()
	s, root := newStackWith(t, fmt.Sprintf(`reconcile: {min_age: 1s, interval: 2s}
warm:
  on_upload: true
  targets: [{name: edge, url: "%s/{key}"}]
`, edge.URL))
	serve := s.start("serve")

	// A segment hooked and stored; a hook for a file outside the roots, refused (403).
	hooked := filepath.Join(root, "live", "cam", "20261125", "1795474211734-0.ts")
	data := randomBytes(100_000, 11)
	writeSegment(t, hooked, data)
	post(t, "http://"+s.listen+"/api/v1/hls", srsHook("c1", "cam", "/", hooked, "live/cam/20261125/1795474211734-0.ts", filepath.Join(root, "live", "cam.m3u8"), 0, 2.0))
	outside := filepath.Join(t.TempDir(), "x.ts")
	os.WriteFile(outside, data, 0o644)
	resp, err := http.Post("http://"+s.listen+"/api/v1/hls", "application/json",
		strings.NewReader(string(srsHook("c1", "cam", "/", outside, "live/cam/x.ts", filepath.Join(root, "live", "cam.m3u8"), 1, 2.0))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("hook for a file outside the roots: %d, want 403", resp.StatusCode)
	}
	// A segment whose hook never came: the reconciler finds it.
	orphan := filepath.Join(root, "live", "cam", "20261125", "1795474213734-1.ts")
	orphanData := randomBytes(50_000, 12)
	writeSegment(t, orphan, orphanData)
	s.settle([]want{
		{key: "live/cam/20261125/1795474211734-0.ts", local: hooked, data: data},
		{key: "live/cam/20261125/1795474213734-1.ts", local: orphan, data: orphanData},
	}, 30*time.Second)
	for deadline := time.Now().Add(10 * time.Second); warmed.Load() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no warm request reached the edge")
		}
	}

	// A recording above the multipart threshold (5 MiB here): its progress series exist only
	// while it uploads, so /metrics is read over and over meanwhile.
	dvr := filepath.Join(root, "live", "cam", "20261125", "1795474211734.flv")
	dvrData := randomBytes(48<<20, 13)
	writeSegment(t, dvr, dvrData)
	body, _ := json.Marshal(map[string]any{"action": "on_dvr", "client_id": "c1", "ip": "127.0.0.1", "vhost": "__defaultVhost__",
		"app": "live", "stream": "cam", "param": "", "cwd": "/", "file": dvr, "stream_url": "/live/cam", "stream_id": "vid-1"})
	post(t, "http://"+s.listen+"/api/v1/dvrs", body)
	exported := map[string]map[string]bool{}
	for deadline := time.Now().Add(30 * time.Second); exported["srs_offload_upload_progress_bytes"] == nil; {
		if time.Now().After(deadline) {
			t.Fatal("no srs_offload_upload_progress_bytes while a 48 MiB recording was uploaded")
		}
		mergeMetrics(exported, scrapeMetrics(t, "http://"+s.admin+"/metrics"))
	}
	s.settle([]want{{key: "live/cam/1795474211734.flv", local: dvr, data: dvrData}}, 60*time.Second)
	mergeMetrics(exported, scrapeMetrics(t, "http://"+s.admin+"/metrics"))
	used := map[string]map[string]bool{} // metric → labels matched on
	where := map[string]string{}         // metric → a file naming it
	for file, exprs := range map[string][]string{"alerts.yml": alertExprs(t), "grafana-dashboard.json": dashboardExprs(t)} {
		if len(exprs) == 0 {
			t.Fatalf("configs/%s: no queries found", file)
		}
		for _, expr := range exprs {
			sel, err := promqlSelectors(expr)
			if err != nil {
				t.Fatalf("configs/%s: %q: %v", file, expr, err)
			}
			if len(sel) == 0 {
				t.Errorf("configs/%s: %q names no metric", file, expr)
			}
			for name, labels := range sel {
				if used[name] == nil {
					used[name] = map[string]bool{}
				}
				for _, l := range labels {
					used[name][l] = true
				}
				where[name] = file
			}
		}
	}
	names := make([]string, 0, len(used))
	for name := range used {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if slices.Contains(prometheusSeries, name) {
			continue
		}
		labels, ok := exported[name]
		if !ok {
			t.Errorf("configs/%s names %s, which /metrics does not export", where[name], name)
			continue
		}
		for l := range used[name] {
			if !labels[l] && !slices.Contains(scrapeLabels, l) {
				t.Errorf("configs/%s matches %s on the label %q, which it does not carry (it has %v)", where[name], name, l, keys(labels))
			}
		}
	}
	if !t.Failed() {
		t.Logf("%d metrics named by the alerts and the dashboard, all exported by serve", len(names))
	}
	serve.stop(t)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mergeMetrics adds the metrics of one scrape, with their labels, to dst.
func mergeMetrics(dst, scraped map[string]map[string]bool) {
	for name, labels := range scraped {
		if dst[name] == nil {
			dst[name] = map[string]bool{}
		}
		for l := range labels {
			dst[name][l] = true
		}
	}
}

// scrapeMetrics reads a Prometheus text exposition: every sample's name (histograms' _bucket,
// _sum and _count included) with the label names its samples carry.
func scrapeMetrics(t *testing.T, url string) map[string]map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)
	out := map[string]map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		if strings.HasPrefix(rest, "{") {
			for _, m := range label.FindAllStringSubmatch(rest[:strings.LastIndex(rest, "}")+1], -1) {
				out[name][m[1]] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// alertExprs is the expr of every rule in configs/alerts.yml.
func alertExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "configs", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

// dashboardExprs is every query of configs/grafana-dashboard.json: the panels' targets (rows'
// nested panels too) and the template variables' label_values(…) queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "configs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("configs/grafana-dashboard.json: %v", err)
	}
	var out []string
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, r := range ps {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			for _, tg := range p.Targets {
				out = append(out, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	labelValues := regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatal(err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("configs/grafana-dashboard.json: template query %q is not label_values(metric, label)", q.Query)
		}
		out = append(out, m[1])
	}
	return out
}

// promqlKeywords are PromQL's words that are neither metrics nor followed by "(".
var promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}

// promqlGrouping are the words followed by a list of label names in parentheses.
var promqlGrouping = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}

// wordAt is the identifier starting at i in s, or "".
func wordAt(s string, i int) string {
	j := i
	for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || j > i && s[j] >= '0' && s[j] <= '9') {
		j++
	}
	return s[i:j]
}

// promqlSelectors returns the metric names a PromQL expression selects, each with the label
// names its matchers use. A word followed by "(" is a function or aggregation; the lists of
// by/without/on/ignoring, range and subquery brackets, strings, numbers, durations and
// Grafana's $variables are skipped.
func promqlSelectors(expr string) (map[string][]string, error) {
	out := map[string][]string{}
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	skipSpace := func(i int) int {
		for i < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
			i++
		}
		return i
	}
	// closing finds the index of the closer of the bracket at i, skipping strings.
	closing := func(i int) (int, error) {
		open, close := expr[i], map[byte]byte{'(': ')', '[': ']', '{': '}'}[expr[i]]
		depth := 0
		for j := i; j < len(expr); j++ {
			switch c := expr[j]; {
			case c == '"' || c == '\'' || c == '`':
				k := strings.IndexByte(expr[j+1:], c)
				if k < 0 {
					return 0, fmt.Errorf("unterminated string at %d", j)
				}
				j += k + 1
			case c == open:
				depth++
			case c == close:
				depth--
				if depth == 0 {
					return j, nil
				}
			}
		}
		return 0, fmt.Errorf("unclosed %c at %d", open, i)
	}
	matcher := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`" + `)\s*(,|$)`)
	last := "" // the metric just read, for a "{" right after it
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			k := strings.IndexByte(expr[i+1:], c)
			if k < 0 {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			i += k + 2
			last = ""
		case c == '$': // Grafana's $var, ${var}, $__rate_interval
			i++
			if i < len(expr) && expr[i] == '{' {
				j, err := closing(i)
				if err != nil {
					return nil, err
				}
				i = j + 1
			}
			for i < len(expr) && isIdent(expr[i], false) {
				i++
			}
		case c == '[':
			j, err := closing(i)
			if err != nil {
				return nil, err
			}
			i = j + 1
		case c == '{':
			j, err := closing(i)
			if err != nil {
				return nil, err
			}
			if last == "" {
				return nil, fmt.Errorf("a selector without a metric name at %d (not supported here)", i)
			}
			body := strings.TrimSpace(expr[i+1 : j])
			for body != "" {
				m := matcher.FindStringSubmatchIndex(body)
				if m == nil || m[0] != 0 {
					return nil, fmt.Errorf("cannot read the matchers %q", expr[i:j+1])
				}
				out[last] = append(out[last], body[m[2]:m[3]])
				body = strings.TrimSpace(body[m[1]:])
			}
			i, last = j+1, ""
		case c >= '0' && c <= '9' || c == '.': // numbers, 1e9, durations (offset 5m)
			for i < len(expr) && (isIdent(expr[i], false) || expr[i] == '.') {
				i++
			}
			last = ""
		case isIdent(c, true):
			j := i
			for j < len(expr) && isIdent(expr[j], false) {
				j++
			}
			word, next := expr[i:j], skipSpace(j)
			i, last = j, ""
			switch {
			case slices.Contains(promqlGrouping, word) && next < len(expr) && expr[next] == '(':
				k, err := closing(next)
				if err != nil {
					return nil, err
				}
				i = k + 1
			case next < len(expr) && expr[next] == '(': // a function or an aggregation
			case slices.Contains([]string{"by", "without"}, wordAt(expr, next)): // sum by (x) (…)
			case slices.Contains(promqlKeywords, strings.ToLower(word)):
			default:
				if _, ok := out[word]; !ok {
					out[word] = nil
				}
				last = word
			}
		default: // operators, parentheses, commas, spaces
			if !strings.ContainsRune(" \t\r\n", rune(c)) {
				last = ""
			}
			i++
		}
	}
	return out, nil
}
