package playlist

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// Served is the live playlist served by srs-offload itself (playlist.live: served) instead of an
// object in the bucket: rendered from the ledger on each request, so a stored segment costs no
// playlist PUT. Players or a CDN fetch it over HTTP; the bucket still holds the segments and the
// VoD playlists. It shows exactly what the bucket's live playlist would: only verified segments,
// and a version that only grows.
type Served struct {
	Ledger *Ledger
	// Prefix is the URL path the playlists are served under: Prefix + the playlist's object key.
	Prefix string
	// Base, when set, names each segment by an absolute URL: Base + "/" + its object key (the
	// bucket or CDN as players reach it). Else segment URIs are relative, as in the bucket: a CDN
	// that routes .m3u8 to srs-offload and the rest to the bucket under the same paths serves both.
	Base string
	// MaxAge is the Cache-Control max-age in seconds (a CDN may cache the playlist this long).
	MaxAge int
}

// Match reports whether a request path is one of the served playlists.
func (s *Served) Match(path string) bool {
	return strings.HasPrefix(path, s.Prefix) && strings.HasSuffix(strings.ToLower(path), ".m3u8")
}

// ServeHTTP answers GET and HEAD of Prefix + a playlist key: 200 with the playlist, 304 when the
// client's If-None-Match names the current version, 404 for a stream the ledger does not know.
func (s *Served) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	key := strings.TrimPrefix(r.URL.Path, s.Prefix)
	body, version, found, err := s.Render(r.Context(), key)
	switch {
	case err != nil:
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "playlist unavailable", http.StatusServiceUnavailable)
		return
	case !found:
		w.Header().Set("Cache-Control", "max-age=1")
		http.Error(w, "no such live playlist", http.StatusNotFound)
		return
	}
	etag := `"` + strconv.FormatInt(version, 10) + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(max(s.MaxAge, 0)))
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

// Render is the live playlist stored under key as it stands in the ledger, and its version; found
// is false while it has no segment.
func (s *Served) Render(ctx context.Context, key string) (body []byte, version int64, found bool, err error) {
	lv, err := s.Ledger.snapshot(ctx, key)
	if err != nil || len(lv.Entries) == 0 {
		return nil, 0, false, err
	}
	lv.Base = s.Base
	return lv.render(), lv.Version, true, nil
}
