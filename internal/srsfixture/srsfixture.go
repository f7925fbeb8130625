// Package srsfixture reads the hook requests captured from SRS (testdata/srs), which the
// benchmark and scale harnesses make every hook from: only the names, paths and numbers change.
package srsfixture

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
)

// Fixture is the first POST body of each action in a capture, and the path SRS sent it to.
type Fixture struct {
	Bodies map[string]map[string]any // action → body
	Paths  map[string]string         // action → path
}

// Load reads a capture (JSON lines of method, path, body) and checks it has every one of want.
func Load(path string, want ...string) (Fixture, error) {
	fx := Fixture{Bodies: map[string]map[string]any{}, Paths: map[string]string{}}
	f, err := os.Open(path)
	if err != nil {
		return fx, fmt.Errorf("fixture: %w (the SRS captures live in testdata/srs in the repository)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Method string         `json:"method"`
			Path   string         `json:"path"`
			Body   map[string]any `json:"body"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fx, fmt.Errorf("fixture %s: %w", path, err)
		}
		action, _ := line.Body["action"].(string)
		if line.Method != http.MethodPost || action == "" || fx.Bodies[action] != nil {
			continue
		}
		fx.Bodies[action], fx.Paths[action] = line.Body, line.Path
	}
	if err := sc.Err(); err != nil {
		return fx, err
	}
	for _, a := range want {
		if fx.Bodies[a] == nil {
			return fx, fmt.Errorf("fixture %s: no %s body", path, a)
		}
	}
	return fx, nil
}

// Body is base with fields replaced, as JSON.
func Body(base map[string]any, fields map[string]any) []byte {
	m := make(map[string]any, len(base)+len(fields))
	for k, v := range base {
		m[k] = v
	}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}
