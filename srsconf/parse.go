// Package srsconf reads SRS's own config file (nginx-like) and audits it against srs-offload's:
// what SRS will do to the files srs-offload must upload, and whether that can be made safe.
package srsconf

import (
	"fmt"
	"strings"
)

// Directive is one `name arg...;` or `name arg... { ... }` of an SRS config.
type Directive struct {
	Name  string
	Args  []string
	Block []*Directive // nil for a plain directive
	Line  int
}

// Get returns the first child directive called name, or nil.
func (d *Directive) Get(name string) *Directive {
	if d == nil {
		return nil
	}
	for _, c := range d.Block {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Arg returns the first argument of the child directive called name, or def when it is not set.
func (d *Directive) Arg(name, def string) string {
	c := d.Get(name)
	if c == nil || len(c.Args) == 0 {
		return def
	}
	return c.Args[0]
}

// Parse reads an SRS config: directives end with ';', blocks are in braces, '#' starts a comment,
// and arguments may be quoted with ' or ".
func Parse(src []byte) (*Directive, error) {
	toks, err := tokenize(string(src))
	if err != nil {
		return nil, err
	}
	root := &Directive{Name: "", Block: []*Directive{}}
	stack := []*Directive{root}
	var cur *Directive
	for _, t := range toks {
		top := stack[len(stack)-1]
		switch {
		case t.text == ";" && !t.quoted:
			if cur == nil {
				return nil, fmt.Errorf("line %d: ';' without a directive", t.line)
			}
			top.Block = append(top.Block, cur)
			cur = nil
		case t.text == "{" && !t.quoted:
			if cur == nil {
				return nil, fmt.Errorf("line %d: '{' without a directive", t.line)
			}
			cur.Block = []*Directive{}
			top.Block = append(top.Block, cur)
			stack = append(stack, cur)
			cur = nil
		case t.text == "}" && !t.quoted:
			if cur != nil {
				return nil, fmt.Errorf("line %d: directive %q does not end with ';'", cur.Line, cur.Name)
			}
			if len(stack) == 1 {
				return nil, fmt.Errorf("line %d: '}' without '{'", t.line)
			}
			stack = stack[:len(stack)-1]
		case cur == nil:
			cur = &Directive{Name: t.text, Line: t.line}
		default:
			cur.Args = append(cur.Args, t.text)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: directive %q does not end with ';'", cur.Line, cur.Name)
	}
	if len(stack) > 1 {
		return nil, fmt.Errorf("line %d: block %q is not closed", stack[len(stack)-1].Line, stack[len(stack)-1].Name)
	}
	return root, nil
}

type token struct {
	text   string
	line   int
	quoted bool
}

func tokenize(s string) ([]token, error) {
	var out []token
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			out = append(out, token{text: string(c), line: line})
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("line %d: unclosed quote", line)
			}
			text := s[i+1 : i+1+j]
			out = append(out, token{text: text, line: line, quoted: true})
			line += strings.Count(text, "\n")
			i += j + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n;{}#", rune(s[j])) {
				j++
			}
			out = append(out, token{text: s[i:j], line: line})
			i = j
		}
	}
	return out, nil
}
