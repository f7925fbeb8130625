package settings

import (
	"fmt"
	"time"
)

// Post configures post-processing (see package postproc): webhooks, DVR → MP4, posters and session
// MP4s, on the node's post queue with its own concurrency.
type Post struct {
	// Concurrency is how many post tasks run at once, apart from worker.concurrency.
	Concurrency int `yaml:"concurrency"`
	// MaxRetry is how many times a post task is retried before it is archived.
	MaxRetry int `yaml:"max_retry"`
	// Timeout bounds one post task (a remux of the longest recording, a delivery's retries not).
	Timeout time.Duration `yaml:"timeout"`
	// PublicURL is the template of the public URL in events: {bucket} {key}; empty: none.
	PublicURL string        `yaml:"public_url"`
	Webhooks  []PostWebhook `yaml:"webhooks"`
	// Remux is off, beside (the MP4 next to the recording) or instead (the recording is deleted
	// once its MP4 is verified).
	Remux string `yaml:"remux"`
	// RemuxKey names the MP4: {key} {dir} {name} (the recording's key, folder, name without
	// extension) and {app} {stream}.
	RemuxKey string `yaml:"remux_key"`
	// FFmpeg is the ffmpeg command, found on PATH unless a path.
	FFmpeg string `yaml:"ffmpeg"`
	// Nice is the niceness ffmpeg runs at (0..19).
	Nice int `yaml:"nice"`
	// FFmpegTimeout bounds one ffmpeg run; it is killed (its whole process group) after it.
	FFmpegTimeout time.Duration `yaml:"ffmpeg_timeout"`
	// TempDir holds each task's download and ffmpeg's output while it runs (twice the
	// recording's size); empty: the system's ($TMPDIR, often a small tmpfs).
	TempDir    string      `yaml:"temp_dir"`
	Poster     PostPoster  `yaml:"poster"`
	SessionMP4 PostSession `yaml:"session_mp4"`
}

// PostWebhook is one receiver of events.
type PostWebhook struct {
	URL string `yaml:"url"`
	// SecretEnv names the environment variable holding the signing secret (never the secret
	// itself in the file).
	SecretEnv string `yaml:"secret_env"`
	// Events it gets; empty: all.
	Events  []string      `yaml:"events"`
	Timeout time.Duration `yaml:"timeout"`
}

// PostPoster is a JPEG frame per DVR recording.
type PostPoster struct {
	Enabled bool `yaml:"enabled"`
	// Offset is how far into the recording the frame is taken (the first frame of a shorter one).
	Offset time.Duration `yaml:"offset"`
	// Key names the JPEG: the variables of post.remux_key.
	Key string `yaml:"key"`
}

// PostSession is one MP4 per ended publish session, from its VoD playlist.
type PostSession struct {
	Enabled bool `yaml:"enabled"`
	// Key names the MP4: the variables of post.remux_key, of the VoD playlist's key.
	Key string `yaml:"key"`
}

// On reports whether anything is post-processed.
func (p Post) On() bool {
	return len(p.Webhooks) > 0 || p.Remux != "off" || p.Poster.Enabled || p.SessionMP4.Enabled
}

// UsesFFmpeg reports whether a step that runs ffmpeg is on.
func (p Post) UsesFFmpeg() bool { return p.Remux != "off" || p.Poster.Enabled || p.SessionMP4.Enabled }

func defaultPost() Post {
	return Post{Concurrency: 2, MaxRetry: 25, Timeout: time.Hour, Remux: "off", RemuxKey: "{dir}/{name}.mp4",
		FFmpeg: "ffmpeg", Nice: 10, FFmpegTimeout: 30 * time.Minute,
		Poster:     PostPoster{Offset: 5 * time.Second, Key: "{dir}/{name}.jpg"},
		SessionMP4: PostSession{Key: "{dir}/{name}.mp4"}}
}

func (c *Config) validatePost(add func(key, format string, a ...any)) {
	p := c.Post
	if p.Concurrency < 1 || p.Concurrency > 256 {
		add("post.concurrency", "want 1..256, got %d", p.Concurrency)
	}
	if p.MaxRetry < 0 {
		add("post.max_retry", "must not be negative")
	}
	if p.Timeout <= 0 {
		add("post.timeout", "must be positive")
	}
	switch p.Remux {
	case "off", "beside", "instead":
	default:
		add("post.remux", "want off, beside or instead, got %q", p.Remux)
	}
	if p.Nice < 0 || p.Nice > 19 {
		add("post.nice", "want 0..19, got %d", p.Nice)
	}
	if p.UsesFFmpeg() {
		if p.FFmpeg == "" {
			add("post.ffmpeg", "required when post.remux, post.poster or post.session_mp4 is on")
		}
		if p.FFmpegTimeout <= 0 || p.FFmpegTimeout > p.Timeout {
			add("post.ffmpeg_timeout", "want positive and at most post.timeout (%s), got %s", p.Timeout, p.FFmpegTimeout)
		}
	}
	if p.Poster.Offset < 0 {
		add("post.poster.offset", "must not be negative")
	}
	if p.SessionMP4.Enabled && c.Playlist.VODKey == "" {
		add("post.session_mp4.enabled", "needs playlist.vod_key: the session MP4 is made from the VoD playlist")
	}
	for i, w := range p.Webhooks {
		if w.SecretEnv == "" {
			add(fmt.Sprintf("post.webhooks[%d].secret_env", i), "required: name the environment variable holding the signing secret")
		}
		if w.Timeout < 0 {
			add(fmt.Sprintf("post.webhooks[%d].timeout", i), "must not be negative")
		}
	}
}
