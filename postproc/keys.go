package postproc

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/srs-offload/srs-offload/queue"
)

// Key is the template of a derived object's key: {key} (the source's key), {dir} (its folder),
// {name} (its name without extension), {app}, {stream} and {session}.
type Key struct{ text string }

var keyVar = regexp.MustCompile(`\{[^{}]*\}`)

var keyVars = []string{"{key}", "{dir}", "{name}", "{app}", "{stream}", "{session}"}

// ParseKey checks a derived key template.
func ParseKey(s string) (Key, error) {
	if strings.TrimSpace(s) == "" {
		return Key{}, errors.New("empty key template")
	}
	for _, v := range keyVar.FindAllString(s, -1) {
		known := false
		for _, k := range keyVars {
			known = known || v == k
		}
		if !known {
			return Key{}, fmt.Errorf("unknown variable %s (known: %s)", v, strings.Join(keyVars, " "))
		}
	}
	if strings.Count(s, "{") != strings.Count(s, "}") {
		return Key{}, errors.New("unbalanced braces")
	}
	return Key{text: s}, nil
}

// Expand is the derived key of st's object.
func (k Key) Expand(st queue.Stored) (string, error) {
	dir, base := path.Split(st.Key)
	name := strings.TrimSuffix(base, path.Ext(base))
	out := strings.NewReplacer("{key}", st.Key, "{dir}", strings.TrimSuffix(dir, "/"), "{name}", name,
		"{app}", st.App, "{stream}", st.Stream, "{session}", st.Session).Replace(k.text)
	out = strings.TrimPrefix(path.Clean("/"+out), "/")
	if out == "" || out == "." {
		return "", fmt.Errorf("key template %q gives an empty key for %s", k.text, st.Key)
	}
	return out, nil
}
