package main

import (
	"fmt"
	"os"

	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/postproc"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/settings"
	"github.com/srs-offload/srs-offload/uploader"
	"github.com/srs-offload/srs-offload/webhook"
	"github.com/srs-offload/srs-offload/worker"
)

// postPlan is post's part of the plan: the webhooks with their secrets read from the environment.
type postPlan struct {
	webhooks []webhook.Target
}

// post compiles post.*. A webhook's secret is read from the variable its secret_env names;
// the secret is never part of a problem's message.
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
	return pp
}

// newPost builds the post-processing stage and its server when post.* turns anything on, and
// makes the offloader announce each stored recording and VoD playlist to it.
func (pr *process) newPost(up *uploader.Uploader, off *worker.Offloader, playlists *playlist.Manager) {
	p, cfg := pr.p, pr.p.cfg
	if !cfg.Post.On() {
		return
	}
	stage := &postproc.Stage{
		Store: up, Queue: pr.qc, Webhooks: p.post.webhooks, PublicURL: cfg.Post.PublicURL,
		Tasks: queue.PostOptions{MaxRetry: cfg.Post.MaxRetry, Timeout: cfg.Post.Timeout}, Log: pr.log,
	}
	off.Post, playlists.Written = stage, stage
	pr.postSrv = postproc.NewServer(redisOpt(cfg), postproc.Options{
		Node: cfg.Node, Concurrency: cfg.Post.Concurrency, RetryBase: cfg.Worker.RetryBase, RetryMax: cfg.Worker.RetryMax,
		ShutdownTimeout: cfg.Worker.ShutdownTimeout, PollInterval: cfg.Worker.PollInterval, Log: pr.log,
	}, stage)
}
