package main

import (
	"fmt"
	"os"

	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/postproc"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/remux"
	"github.com/srs-offload/srs-offload/settings"
	"github.com/srs-offload/srs-offload/uploader"
	"github.com/srs-offload/srs-offload/webhook"
	"github.com/srs-offload/srs-offload/worker"
)

// postPlan is post's part of the plan: the webhooks with their secrets read from the
// environment, and the derived files with ffmpeg found on PATH (nil when none is on).
type postPlan struct {
	webhooks []webhook.Target
	derived  *postproc.Derived
}

// post compiles post.*. A webhook's secret is read from the variable its secret_env names;
// the secret is never part of a problem's message. ffmpeg must be found when a step runs it.
func (ps *problems) post(c settings.Post) postPlan {
	var pp postPlan
	for i, w := range c.Webhooks {
		key := fmt.Sprintf("post.webhooks[%d]", i)
		t := webhook.Target{URL: w.URL, Events: w.Events, Timeout: w.Timeout}
		if w.SecretEnv != "" {
			t.Secret = []byte(os.Getenv(w.SecretEnv))
		}
		if err := webhook.Check(t); err != nil {
			ps.add(key, err)
		}
		pp.webhooks = append(pp.webhooks, t)
	}
	if !c.UsesFFmpeg() {
		return pp
	}
	key := func(name, t string) postproc.Key {
		k, err := postproc.ParseKey(t)
		if err != nil {
			ps.add(name, err)
		}
		return k
	}
	d := &postproc.Derived{Remux: c.Remux, Poster: c.Poster.Enabled, PosterOffset: c.Poster.Offset,
		SessionMP4: c.SessionMP4.Enabled, TempDir: c.TempDir}
	if c.TempDir != "" {
		if fi, err := os.Stat(c.TempDir); err != nil || !fi.IsDir() {
			ps.add("post.temp_dir", fmt.Errorf("%q is not a folder: %v", c.TempDir, err))
		}
	}
	if c.Remux != postproc.RemuxOff {
		d.RemuxKey = key("post.remux_key", c.RemuxKey)
	}
	if c.Poster.Enabled {
		d.PosterKey = key("post.poster.key", c.Poster.Key)
	}
	if c.SessionMP4.Enabled {
		d.SessionKey = key("post.session_mp4.key", c.SessionMP4.Key)
	}
	if !ps.Has("post.ffmpeg") {
		path, err := remux.Find(c.FFmpeg)
		if err != nil {
			ps.add("post.ffmpeg", fmt.Errorf("%w (needed by post.remux, post.poster or post.session_mp4)", err))
		}
		d.FFmpeg = remux.FFmpeg{Path: path, Nice: c.Nice, Timeout: c.FFmpegTimeout, FFprobe: remux.FindProbe(path)}
	}
	pp.derived = d
	return pp
}

// newPost builds the post-processing stage and its server when post.* turns anything on, and
// makes the offloader and the playlists announce each stored recording and VoD playlist to it.
func (pr *process) newPost(up *uploader.Uploader, off *worker.Offloader, playlists *playlist.Manager) {
	p, cfg := pr.p, pr.p.cfg
	if !cfg.Post.On() {
		return
	}
	stage := &postproc.Stage{
		Store: up, Queue: pr.qc, Webhooks: p.post.webhooks, PublicURL: cfg.Post.PublicURL,
		Tasks: queue.PostOptions{MaxRetry: cfg.Post.MaxRetry, Timeout: cfg.Post.Timeout}, Log: pr.log,
	}
	if d := p.post.derived; d != nil {
		dd := *d
		dd.Files = up
		stage.Derived = &dd
	}
	off.Post, playlists.Written = stage, stage
	pr.postSrv = postproc.NewServer(pr.p.redisOpt(), postproc.Options{
		Node: p.queueNode(), Concurrency: cfg.Post.Concurrency, RetryBase: cfg.Worker.RetryBase, RetryMax: cfg.Worker.RetryMax,
		ShutdownTimeout: cfg.Worker.ShutdownTimeout, PollInterval: cfg.Worker.PollInterval, Log: pr.log,
	}, stage)
}
