// Package warm makes CDN edges cache each segment once it is at the origin, never before.
//
// SRS's on_hls_notify (a GET whose path carries [app]/[stream]/[ts_url]) says a segment was
// closed; the segment is then still on its way to storage. The notify and the worker's "stored and
// verified" meet in Redis (Rendezvous): whichever comes second enqueues the warm task, so an edge
// is asked for a segment only once storage has it, and a warm request can never make an edge
// cache a 404. The warm task then fetches the segment through every configured target.
// The meeting point's Redis key and scripts are package rdb's.
package warm

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
)

// Pattern is the path of SRS's on_hls_notify URL, e.g. "/api/v1/hls/{app}/{stream}/{ts_url}".
// {app}, {stream}, {server_id} and {service_id} stand for one path segment each; {ts_url} for the
// rest of the path and must come last. SRS's [param] becomes the query string and is ignored.
type Pattern struct {
	text  string
	parts []string // literal segments, or "{name}"
}

// ParsePattern checks a pattern.
func ParsePattern(s string) (Pattern, error) {
	p := Pattern{text: s}
	if !utf8.ValidString(s) {
		return p, fmt.Errorf("notify path %q: not valid UTF-8", s)
	}
	if !strings.HasPrefix(s, "/") || !strings.HasSuffix(s, "/{ts_url}") {
		return p, fmt.Errorf("notify path %q: must start with / and end with /{ts_url}", s)
	}
	seen := map[string]bool{}
	for _, seg := range strings.Split(strings.Trim(s, "/"), "/") {
		if strings.HasPrefix(seg, "{") {
			switch seg {
			case "{app}", "{stream}", "{ts_url}", "{server_id}", "{service_id}":
			default:
				return p, fmt.Errorf("notify path %q: unknown variable %s (known: {app} {stream} {ts_url} {server_id} {service_id})", s, seg)
			}
			if seen[seg] {
				return p, fmt.Errorf("notify path %q: %s twice", s, seg)
			}
			seen[seg] = true
		} else if strings.ContainsAny(seg, "{}") {
			return p, fmt.Errorf("notify path %q: a variable must be a whole path segment", s)
		}
		p.parts = append(p.parts, seg)
	}
	if !seen["{app}"] || !seen["{stream}"] {
		return p, fmt.Errorf("notify path %q: needs {app} and {stream}", s)
	}
	return p, nil
}

func (p Pattern) String() string { return p.text }

// Notice is what a notify names.
type Notice struct{ App, Stream, TSURL string }

// ErrNoMatch: the path is not a notify of this pattern.
var ErrNoMatch = errors.New("not an on_hls_notify path")

// ErrUnsafe: the notify names something that is not a segment below its stream's folder.
var ErrUnsafe = errors.New("unsafe on_hls_notify path")

// Match reads a request path (as received, still escaped).
func (p Pattern) Match(escapedPath string) (Notice, error) {
	segs := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	var n Notice
	for i, part := range p.parts {
		if i >= len(segs) {
			return n, ErrNoMatch
		}
		if part == "{ts_url}" {
			rest, err := url.PathUnescape(strings.Join(segs[i:], "/"))
			if err != nil {
				return n, fmt.Errorf("%w: %w", ErrUnsafe, err)
			}
			n.TSURL = rest
			break
		}
		seg, err := url.PathUnescape(segs[i])
		if err != nil {
			return n, fmt.Errorf("%w: %w", ErrUnsafe, err)
		}
		switch part {
		case "{app}":
			n.App = seg
		case "{stream}":
			n.Stream = seg
		case "{server_id}", "{service_id}":
		default:
			if seg != part {
				return n, ErrNoMatch
			}
		}
	}
	// SRS substitutes values raw; anything that could leave the stream's folder, name another
	// host or a URL is refused (srs-offload never fetches from a request's hosts anyway).
	for _, v := range []string{n.App, n.Stream} {
		if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\\\x00") {
			return n, fmt.Errorf("%w: app/stream %q", ErrUnsafe, v)
		}
	}
	t := n.TSURL
	if t == "" || strings.Contains(t, "://") || strings.HasPrefix(t, "/") || strings.ContainsAny(t, "\\\x00?#") {
		return n, fmt.Errorf("%w: ts_url %q", ErrUnsafe, t)
	}
	for _, seg := range strings.Split(t, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return n, fmt.Errorf("%w: ts_url %q", ErrUnsafe, t)
		}
	}
	return n, nil
}

// Folders knows the folder of each stream's m3u8_url (from its on_hls).
type Folders interface {
	Folder(ctx context.Context, app, stream string) (string, bool, error)
}

// Intake handles on_hls_notify: it maps the notify to the segment's object key and meets the
// worker at the rendezvous.
type Intake struct {
	Pattern Pattern
	Folders Folders
	// Fallback names the m3u8 folder of a stream no on_hls was seen for, e.g. "{app}".
	Fallback objkey.Template
	// HLSKey is keys.hls: the same template the hook used for the segment's key.
	HLSKey     objkey.Template
	Rendezvous *Rendezvous
	Enqueue    func(context.Context, queue.Warm) error
}

// Accept handles one notify path. It returns ErrNoMatch for a path that is not a notify, and
// ErrUnsafe for one that tries to leave its stream. A notify for a stream Folders does not know
// writes nothing to Redis: it warms its segment only if that is stored already.
func (in *Intake) Accept(ctx context.Context, escapedPath string) error {
	n, err := in.Pattern.Match(escapedPath)
	if err != nil {
		return err
	}
	folder, found, err := in.Folders.Folder(ctx, n.App, n.Stream)
	if err != nil {
		return err
	}
	if !found {
		if folder, err = in.Fallback.Expand(objkey.Vars{App: n.App, Stream: n.Stream}); err != nil {
			return fmt.Errorf("warm.folder: %w", err)
		}
	}
	u := path.Join(folder, n.TSURL)
	key, err := in.HLSKey.Expand(objkey.Vars{App: n.App, Stream: n.Stream, Basename: path.Base(n.TSURL), URL: u})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnsafe, err)
	}
	// Only a stream the ledger knows (an on_hls was recorded for it) may leave a mark at the
	// rendezvous: a notify naming anything else only meets a segment already stored, so notifies
	// from whoever reaches the listener cannot fill Redis.
	meet := in.Rendezvous.Notified
	if !found {
		meet = in.Rendezvous.Collect
	}
	actual, ready, err := meet(ctx, key)
	if err != nil || !ready {
		return err
	}
	return in.Enqueue(ctx, queue.Warm{Key: actual, Notified: time.Now()})
}
