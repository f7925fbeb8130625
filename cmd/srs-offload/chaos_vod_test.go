package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/srs-offload/srs-offload/internal/hlstest"
	"github.com/srs-offload/srs-offload/uploader"
)

// chaosVOD is what the VoD playlist of one publish session holds.
type chaosVOD struct {
	stream, key string
	pl          *hlstest.Playlist
	want        []*genFile // the session's segments, in seq order
	wrote       float64    // their durations, as written
	problem     string     // "" when it lists every segment, in order, each stored, EXTINF within 1%
}

// chaosVODs waits (up to wait) until every stream's session has one VoD playlist in storage that
// lists every segment the fake SRS wrote for it, in order, each object present, with its EXTINF
// adding up to what was written within 1%. It returns each stream's last state.
func chaosVODs(ctx context.Context, store *uploader.Uploader, files []*genFile, wait time.Duration) []chaosVOD {
	per := map[string][]*genFile{}
	for _, g := range files {
		if g.kind == "hls" {
			per[g.stream] = append(per[g.stream], g)
		}
	}
	streams := make([]string, 0, len(per))
	for s, gs := range per {
		slices.SortFunc(gs, func(a, b *genFile) int { return a.seq - b.seq })
		streams = append(streams, s)
	}
	slices.Sort(streams)
	deadline := time.Now().Add(wait)
	for {
		var out []chaosVOD
		done := true
		objs, err := listObjects(ctx, store)
		for _, s := range streams {
			v := chaosVOD{stream: s, want: per[s]}
			for _, g := range v.want {
				v.wrote += g.dur
			}
			if err != nil {
				v.problem = "cannot list the bucket: " + err.Error()
			} else {
				v.check(ctx, store, objs)
			}
			done = done && v.problem == ""
			out = append(out, v)
		}
		if done || time.Now().After(deadline) || !sleepCtx(ctx, 2*time.Second) {
			return out
		}
	}
}

func (v *chaosVOD) check(ctx context.Context, store *uploader.Uploader, objs map[string]objInfo) {
	prefix := "live/" + v.stream + "/vod/"
	var keys []string
	for k := range objs {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, ".m3u8") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) != 1 {
		v.problem = fmt.Sprintf("%d VoD playlists under %s (%s), want one: the stream was published once", len(keys), prefix, strings.Join(keys, ", "))
		return
	}
	v.key = keys[0]
	body, err := getObject(ctx, store, v.key)
	if err != nil {
		v.problem = err.Error()
		return
	}
	if v.pl, err = hlstest.Parse(v.key, body); err != nil {
		v.problem = "does not parse: " + err.Error()
		return
	}
	if err := v.pl.Check(func(k string) bool { _, ok := objs[k]; return ok }); err != nil {
		v.problem = err.Error()
		return
	}
	if v.pl.Type != "VOD" || !v.pl.Ended {
		v.problem = fmt.Sprintf("type %q, ended %v", v.pl.Type, v.pl.Ended)
		return
	}
	got := make([]string, len(v.pl.Segments))
	for i, s := range v.pl.Segments {
		got[i] = s.Key
	}
	want := make([]string, len(v.want))
	for i, g := range v.want {
		want[i] = g.key
	}
	if !slices.Equal(got, want) {
		v.problem = fmt.Sprintf("lists %d segments, the session has %d: %s", len(got), len(want), listDiff(got, want))
		return
	}
	if e := v.extinfErr(); e > 0.01 {
		v.problem = fmt.Sprintf("EXTINF adds up to %.3f s, %.3f s were written (%.2f%% off)", v.pl.Duration(), v.wrote, 100*e)
	}
}

// extinfErr is the relative difference between the EXTINF total and the written durations.
func (v *chaosVOD) extinfErr() float64 {
	if v.pl == nil || v.wrote == 0 {
		return math.Inf(1)
	}
	return math.Abs(v.pl.Duration()-v.wrote) / v.wrote
}

// listDiff names the first difference of two key lists: what is missing, out of order or extra.
func listDiff(got, want []string) string {
	in := map[string]bool{}
	for _, k := range got {
		in[k] = true
	}
	var missing []string
	for _, k := range want {
		if !in[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return "missing " + strings.Join(firstN(missing, 10), ", ")
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("position %d is %s, want %s", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("extra entries after %d", len(want))
}

func getObject(ctx context.Context, store *uploader.Uploader, key string) ([]byte, error) {
	out, err := store.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(store.Bucket()), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return b, nil
}

// probeVOD copies a VoD playlist and its segments out of the bucket (keys kept, so its relative
// URIs resolve) and plays it with ffprobe: its duration and its video frames (25 fps) must both
// be within 1% of what was written. It returns a line for the summary.
func probeVOD(t *testing.T, ctx context.Context, store *uploader.Uploader, v chaosVOD) string {
	t.Helper()
	dir := t.TempDir()
	fetch := func(key string) {
		b, err := getObject(ctx, store, key)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(key))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fetch(v.key)
	for _, s := range v.pl.Segments {
		fetch(s.Key)
	}
	local := filepath.Join(dir, filepath.FromSlash(v.key))
	dur := probeDuration(t, local)
	var frames int
	packets := probeStreams(t, local, true)
	if _, err := fmt.Sscanf(packets, "h264=%d", &frames); err != nil {
		t.Errorf("ffprobe %s: streams %q, want h264 only", v.key, packets)
	}
	fdur := float64(frames) / 25
	for what, d := range map[string]float64{"duration": dur, "frames": fdur} {
		if math.Abs(d-v.wrote)/v.wrote > 0.01 {
			t.Errorf("ffprobe of %s (%d segments): %s %.3f s, %.3f s were written", v.key, len(v.pl.Segments), what, d, v.wrote)
		}
	}
	return fmt.Sprintf("%s: %d segments, written %.2fs, ffprobe %.2fs, %d frames (%.2fs)", v.stream, len(v.pl.Segments), v.wrote, dur, frames, fdur)
}
