package objkey

// Uses returns the variables the template names, in order (repeats included).
func (t Template) Uses() []string {
	var out []string
	for _, p := range t.parts {
		if p.v != "" {
			out = append(out, p.v)
		}
	}
	return out
}

// Fill expands the template into a text that is not a key (an object tag, a metadata value, a
// header): each variable's value goes through clean, and none of Expand's key rules apply. ok is
// false when a variable the template uses is empty for v (a playlist has no {app} here): the
// caller leaves that text out rather than store a half-filled one.
func (t Template) Fill(v Vars, clean func(string) string) (s string, ok bool) {
	var b []byte
	for _, p := range t.parts {
		if p.v == "" {
			b = append(b, p.lit...)
			continue
		}
		val := v.get(p.v)
		if val == "" {
			return "", false
		}
		b = append(b, clean(val)...)
	}
	return string(b), true
}

// ParseText is Parse for a template that is not a key: it may be empty (no text) and it may
// name only the variables in allowed.
func ParseText(s string, allowed []string) (Template, error) {
	if s == "" {
		return Template{}, nil
	}
	t, err := Parse(s)
	if err != nil {
		return t, err
	}
	for _, name := range t.Uses() {
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return t, &unknownVarError{s, name, allowed}
		}
	}
	return t, nil
}

type unknownVarError struct {
	tmpl, name string
	allowed    []string
}

func (e *unknownVarError) Error() string {
	s := "template \"" + e.tmpl + "\": {" + e.name + "} is not known for every stored object (use"
	for i, a := range e.allowed {
		if i > 0 {
			s += ","
		}
		s += " {" + a + "}"
	}
	return s + ")"
}
