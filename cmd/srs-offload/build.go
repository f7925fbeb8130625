package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/admin"
	"github.com/srs-offload/srs-offload/claim"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/postproc"
	"github.com/srs-offload/srs-offload/uploader"
	"github.com/srs-offload/srs-offload/worker"

	"github.com/srs-offload/srs-offload/hook"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/progress"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/reconcile"
	"github.com/srs-offload/srs-offload/redisconn"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/settings"
	"github.com/srs-offload/srs-offload/spool"
	"github.com/srs-offload/srs-offload/warm"
)

// plan is a config turned into the values of srs-offload's packages: every template parsed and
// every root opened, once. It is the one place where settings' plain values become spool, roots,
// warm, reconcile and objkey values; serve, hooks, worker, dev, check and requeue all start from
// it, so a config that passes check is the config that starts.
type plan struct {
	cfg    settings.Config
	roots  *roots.Set
	keys   hook.Keys
	vodKey *objkey.Template // nil: no VoD playlists
	spool  *spool.Spool     // nil: spool.enabled is off
	// layout gives found files their key variables; nil when reconcile.enabled is off.
	layout *reconcile.Layout
	// targets, notify and folder are CDN warming; targets is empty when it is off.
	targets []warm.Target
	notify  warm.Pattern
	folder  objkey.Template
	// objects are the options every stored object is written with (storage.storage_class …).
	objects uploader.ObjectOptions
	// redis makes every Redis client of the process (asynq's and ours), on any layout.
	redis *redisconn.Conn
	// scope is queue.scope: the node's queues, or a shared volume's.
	scope queue.Scope
	// post is post-processing's (webhooks with their secrets).
	post postPlan
}

// queueNode is the node part of this process's queue names: node, or shared:<name>.
func (p *plan) queueNode() string { return p.scope.QueueNode(p.cfg.Node) }

// compile validates cfg (settings.Validate, which fills in node) and converts it. Every problem,
// of either step, is reported at once and names its key (settings.Errors).
func compile(cfg settings.Config) (*plan, error) {
	var ps problems
	if err := cfg.Validate(); err != nil {
		var ok bool
		if ps.Errors, ok = settings.AsErrors(err); !ok {
			return nil, err
		}
	}
	p := &plan{cfg: cfg}
	if err := queue.ValidNode(cfg.Node); err != nil {
		ps.add("node", err)
	} else if strings.HasPrefix(cfg.Node, queue.SharedPrefix) || strings.Contains(cfg.Node, "/") {
		ps.add("node", fmt.Errorf("%q: must not start with %q (the queues of shared volumes) nor hold '/'", cfg.Node, queue.SharedPrefix))
	}
	if len(cfg.Roots) > 0 {
		p.roots = ps.roots(cfg.Roots)
	}
	p.scope = ps.scope(cfg, p.roots)
	p.keys = hook.Keys{HLS: ps.template("keys.hls", cfg.Keys.HLS), Playlist: ps.template("keys.playlist", cfg.Keys.Playlist),
		DVR: ps.template("keys.dvr", cfg.Keys.DVR)}
	if cfg.Playlist.VODKey != "" {
		t := ps.template("playlist.vod_key", cfg.Playlist.VODKey)
		p.vodKey = &t
	}
	p.objects = ps.objectOptions(cfg.Storage)
	if rc, err := redisconn.New(cfg.Redis); err != nil {
		var ke *redisconn.KeyError
		if errors.As(err, &ke) {
			ps.add(ke.Key, ke.Err)
		} else {
			ps.add("redis", err)
		}
	} else {
		p.redis = rc
	}
	if cfg.Spool.Enabled {
		sp, err := spool.New(p.roots, cfg.Spool.Dir)
		if err != nil {
			ps.add("spool.dir", err)
		}
		if sp != nil && p.scope.Shared() {
			// Hosts mounting one volume each keep their links in a folder of their own.
			if err := sp.Shared(cfg.Node); err != nil && !ps.Has("node") {
				ps.add("node", err)
			}
		}
		p.spool = sp
	}
	if cfg.Reconcile.Enabled {
		p.layout = ps.layout(cfg.Reconcile)
	}
	if len(cfg.Warm.Targets) > 0 {
		if !ps.Has("warm.notify_path") {
			var err error
			if p.notify, err = warm.ParsePattern(cfg.Warm.NotifyPath); err != nil {
				ps.add("warm.notify_path", err)
			}
		}
		p.folder = ps.template("warm.folder", cfg.Warm.Folder)
		for i, t := range cfg.Warm.Targets {
			wt := warm.Target{Name: t.Name, URL: t.URL, Method: t.Method, Body: t.Body, Headers: t.Headers, Edges: t.Edges,
				Timeout: t.Timeout, Retries: t.Retries, Concurrency: t.Concurrency}
			if err := warm.CheckTarget(wt); err != nil {
				ps.add(fmt.Sprintf("warm.targets[%d]", i), err)
			}
			p.targets = append(p.targets, wt)
		}
	}
	p.post = ps.post(cfg.Post)
	if len(ps.Errors) > 0 {
		p.close()
		return nil, ps.Errors
	}
	return p, nil
}

// problems collects compile's findings by key. A key settings already found wrong (a template
// that is not UTF-8) is not judged again.
type problems struct{ settings.Errors }

func (ps *problems) add(key string, err error) {
	if !ps.Has(key) {
		ps.Errors = append(ps.Errors, settings.Problem{Key: key, Msg: err.Error()})
	}
}

// template parses an object key template.
func (ps *problems) template(key, t string) objkey.Template {
	if ps.Has(key) {
		return objkey.Template{}
	}
	v, err := objkey.Parse(t)
	if err != nil {
		ps.add(key, err)
	}
	return v
}

// objectOptions parses the object options' templates: they may name only the variables every
// stored object knows (settings.ObjectVars).
func (ps *problems) objectOptions(s settings.Storage) uploader.ObjectOptions {
	text := func(key, t string) objkey.Template {
		if ps.Has(key) {
			return objkey.Template{}
		}
		v, err := objkey.ParseText(t, settings.ObjectVars)
		if err != nil {
			ps.add(key, err)
		}
		return v
	}
	named := func(key string, m map[string]string) []uploader.Text {
		var out []uploader.Text
		for _, name := range slices.Sorted(maps.Keys(m)) {
			out = append(out, uploader.Text{Name: name, Template: text(key+"."+name, m[name])})
		}
		return out
	}
	return uploader.ObjectOptions{
		StorageClassHLS: cmp.Or(s.StorageClassHLS, s.StorageClass), StorageClassDVR: cmp.Or(s.StorageClassDVR, s.StorageClass),
		Tags: named("storage.tags", s.Tags), Metadata: named("storage.metadata", s.Metadata),
		ContentDisposition: text("storage.content_disposition", s.ContentDisposition), ACL: s.ACL,
	}
}

// scope reads queue.scope. A shared volume is the process's one root: its tasks name files by
// their path below it, which every host mounting the volume shares.
func (ps *problems) scope(cfg settings.Config, rs *roots.Set) queue.Scope {
	vol, err := queue.ParseScope(cfg.Queue.Scope)
	if err != nil {
		ps.add("queue.scope", err)
		return queue.Scope{}
	}
	if vol == "" {
		return queue.Scope{}
	}
	if len(cfg.Roots) != 1 {
		ps.add("queue.scope", fmt.Errorf("%s needs exactly one root, the volume's mount point on this host; roots lists %d (run a process per volume, and one with queue.scope node for local disks)",
			cfg.Queue.Scope, len(cfg.Roots)))
		return queue.Scope{}
	}
	s := queue.Scope{Volume: vol, Node: cfg.Node}
	if rs != nil {
		s.Mount = rs.Dirs()[0]
	}
	return s
}

// roots opens the roots, naming the one at fault.
func (ps *problems) roots(dirs []string) *roots.Set {
	rs, err := roots.New(dirs)
	if err == nil {
		return rs
	}
	named := false
	for i, d := range dirs {
		if one, err := roots.New([]string{d}); err != nil {
			ps.add(fmt.Sprintf("roots[%d]", i), err)
			named = true
		} else {
			one.Close()
		}
	}
	if !named {
		ps.add("roots", err)
	}
	return nil
}

// layout compiles SRS's path templates (nil when one is wrong).
func (ps *problems) layout(c settings.Reconcile) *reconcile.Layout {
	bad := false
	check := func(key string, ts []string, f func(string) error) {
		for i, t := range ts {
			k := fmt.Sprintf("%s[%d]", key, i)
			if ps.Has(k) {
				bad = true
			} else if err := f(t); err != nil {
				ps.add(k, err)
				bad = true
			}
		}
	}
	check("reconcile.hls_ts_file", c.HLSTSFile, reconcile.CheckTemplate)
	check("reconcile.dvr_path", c.DVRPath, reconcile.CheckTemplate)
	check("reconcile.hls_m3u8_file", c.HLSM3U8File, reconcile.CheckM3U8Template)
	if bad {
		return nil
	}
	layout, err := reconcile.NewLayout(c.HLSTSFile, c.DVRPath)
	if err != nil {
		key, _, _ := strings.Cut(err.Error(), ":")
		ps.add("reconcile."+key, err)
	}
	return layout
}

// close lets go of the roots.
func (p *plan) close() {
	if p.roots != nil {
		p.roots.Close()
	}
}

// hookDrain is how long the hooks in flight get at shutdown: reading one takes
// hooks.read_timeout at most, recording it hooks.enqueue_timeout.
func (p *plan) hookDrain() time.Duration {
	return p.cfg.Hooks.ReadTimeout + p.cfg.Hooks.EnqueueTimeout + time.Second
}

// redisOpt is the asynq connection of the config's Redis layout (server, inspector, requeue).
func (p *plan) redisOpt() asynq.RedisConnOpt { return p.redis.Asynq(0) }

// checkRedis reaches Redis as the config says. With every set, each sentinel or Cluster seed
// node is asked too (check --connect); otherwise one write and script on the master or Cluster
// is enough (serve, whose layout may have a sentinel down).
func (p *plan) checkRedis(ctx context.Context, every bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t := max(p.cfg.Hooks.EnqueueTimeout, 2*time.Second)
	if every {
		return p.redis.Check(ctx, t)
	}
	return p.redis.Reach(ctx, t)
}

// newStorage builds the storage client without reaching it.
func newStorage(ctx context.Context, p *plan) (*uploader.Uploader, error) {
	cfg := p.cfg
	s := cfg.Storage
	ssecKey, err := s.SSECKey()
	if err != nil {
		return nil, fmt.Errorf("storage.sse_c_key_env: %w", err)
	}
	return uploader.New(ctx, uploader.Config{
		Provider: s.Provider, Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, PathStyle: s.PathStyle,
		AccessKey: s.AccessKey, SecretKey: s.SecretKey, Prefix: s.Prefix,
		MultipartThreshold: int64(s.MultipartThreshold), PartSize: int64(s.PartSize),
		PartConcurrency: s.PartConcurrency, MaxConns: 2 * cfg.Worker.Concurrency,
		Objects: p.objects,
		Credentials: uploader.Credentials{SessionToken: s.SessionToken, Profile: s.Profile, RoleARN: s.RoleARN,
			ExternalID: s.ExternalID, SessionName: s.SessionName, WebIdentityTokenFile: s.WebIdentityTokenFile, STSEndpoint: s.STSEndpoint},
		Verify: s.Verify, Checksum: s.Checksum,
		SSE: s.SSE, KMSKeyID: s.KMSKeyID, BucketKey: s.BucketKey, SSECKey: ssecKey,
	})
}

// openStorage builds the storage client and checks that the bucket answers.
func openStorage(ctx context.Context, p *plan) (*uploader.Uploader, error) {
	up, err := newStorage(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := up.CheckBucket(ctx); err != nil {
		return nil, err
	}
	return up, nil
}

// shutdownMargin is what shutting down may take beyond worker.shutdown_timeout, which asynq
// gives the running tasks: the other duties stopping after the worker.
const shutdownMargin = 2 * time.Second

// buildFor says what build may touch beyond constructing the parts.
type buildFor struct {
	// connect reaches Redis and the bucket, and probes the spool folders.
	connect bool
	// take holds every file on disk in the spool before connecting (a process that serves).
	take bool
}

// process is the parts of one role, built from a plan by build: each role builds only what it
// uses. Its long-running duties (the listeners with the hook receiver, the asynq worker, the
// playlist sweeper, the multipart janitor, the reconciler with its watcher) run from start until
// shutdown.
type process struct {
	p   *plan
	r   roles
	log *slog.Logger

	qc        *queue.Client
	rdb       redis.UniversalClient
	inspector *asynq.Inspector
	collector prometheus.Collector // registered, or nil
	ledger    *playlist.Ledger
	// The worker's ledger has a Redis connection pool of its own (wrdb): under a hook storm
	// thousands of hooks wait for a connection of rdb's pool, and the worker's ledger updates
	// queued behind them stalled the uploads (docs/SCALE.md).
	wrdb    redis.UniversalClient
	wledger *playlist.Ledger
	rendez  *warm.Rendezvous // nil without warm.targets

	rec   *reconcile.Reconciler // nil when reconcile is off, or in a worker without a spool
	hooks *hook.Handler         // the hooks role's
	store *uploader.Uploader    // the worker role's
	ws    *worker.Server
	// postSrv runs post-processing (nil when post.* turns nothing on).
	postSrv *postproc.Server
	sweep   *worker.Sweeper // nil when playlist.enabled is off
	jan     *uploader.Janitor
	adm     *admin.Handler
	meter   *spool.Meter       // the disk backlog; nil without a spool
	admOn   context.CancelFunc // stops adm.Watch
	admWG   sync.WaitGroup
	srvs    *servers
}

// build turns a plan into the parts of role r. With f.take it first holds every file on disk in
// the spool (take first: before Redis or storage are asked, so SRS's cleanup cannot delete a file
// while they are slow or down); with f.connect it reaches Redis and the bucket. check runs it
// without either (or with connect for --connect), so a config that passes check builds.
func build(ctx context.Context, p *plan, r roles, log *slog.Logger, f buildFor) (_ *process, err error) {
	cfg := p.cfg
	pr := &process{p: p, r: r, log: log}
	defer func() {
		if err != nil {
			if pr.rec != nil {
				pr.rec.Shutdown(context.Background()) // started after the take pass
			}
			pr.close() // what was built so far
		}
	}()
	sp := p.spool
	if sp != nil && f.connect {
		if err := sp.Probe(); err != nil {
			if !errors.Is(err, spool.ErrNoLinks) {
				return nil, fmt.Errorf("spool.dir: %w", err)
			}
			log.Warn("spool: hard links fail in a root; SRS's hls_cleanup/hls_dispose may delete segments before they are uploaded", "err", err)
		}
	}
	// The playlist ledger, the warming rendezvous and the claims of a shared volume's files;
	// bounded like the enqueue, since the hook waits for them too.
	t := cfg.Hooks.EnqueueTimeout
	pr.rdb = p.redis.Client(t)
	pr.qc = queue.NewClient(p.redis.Asynq(t), queue.Options{
		Node: p.queueNode(), MaxRetry: cfg.Worker.MaxRetry, Timeout: cfg.Worker.Timeout, Dedup: cfg.Worker.Dedup,
		RedisTimeout: cfg.Hooks.EnqueueTimeout,
	})
	pr.rec = pr.newReconciler()
	if pr.rec != nil && f.take {
		t0 := time.Now()
		n, err := pr.rec.TakeAll(ctx)
		if err != nil {
			log.Warn("spool: the take pass at start did not finish; the first scan takes the rest", "err", err)
		}
		log.Info("spool: files on disk held at start", "files", n, "took", time.Since(t0).Round(time.Millisecond))
		// From here until the worker has shut down, the reconciler takes every new file (watcher,
		// scans), also while Redis, storage or the worker's start are slow: in that time no hook
		// takes a file, and SRS's cleanup does not wait.
		pr.rec.Start()
	}
	var reach []error
	if f.connect {
		if err := p.checkRedis(ctx, !f.take); err != nil {
			if !r.hooks || !f.take {
				reach = append(reach, err)
			} else {
				// The receiver starts anyway: hooks are answered 503 (the file is held in the
				// spool), and the reconciler enqueues what is on disk once Redis answers.
				log.Warn("redis not reachable at start; hooks get 503 and their files are held in the spool until it answers", "err", err)
			}
		}
	}
	pr.ledger = playlist.New(pr.rdb, playlist.Settings{Window: cfg.Playlist.Window, Stall: cfg.Playlist.Stall, Retain: cfg.Playlist.Retain})
	if len(p.targets) > 0 {
		pr.rendez = warm.NewRendezvous(pr.rdb, cfg.Warm.Wait)
	}
	if p.spool != nil {
		node := cfg.Node
		pr.meter = &spool.Meter{Spool: p.spool, Log: log, Publish: func(ctx context.Context, b spool.Backlog) {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			d := progress.Disk{Node: node, Files: b.Files, Bytes: b.Bytes, Oldest: b.Oldest, Updated: time.Now()}
			if err := progress.PublishDisk(ctx, pr.rdb, d, 30*time.Second); err != nil {
				log.Debug("spool: could not publish the disk backlog to Redis", "err", err)
			}
		}}
	}
	if r.hooks {
		pr.hooks = pr.newHooks(&playlist.Receiver{Ledger: pr.ledger, Node: p.queueNode()})
	}
	if r.worker {
		if err := pr.newWorker(ctx, f.connect); err != nil {
			reach = append(reach, err)
		}
	}
	if err := errors.Join(reach...); err != nil {
		return nil, err
	}
	// Every process serves its metrics on admin.listen, the queues' too (size and latency: the
	// backlog's age).
	pr.inspector = asynq.NewInspector(p.redisOpt())
	checks := []admin.Check{
		{Name: "redis", Dependency: "redis", Run: func(ctx context.Context) error { return pr.rdb.Ping(ctx).Err() }},
		{Name: "roots", Run: admin.Writable(p.roots.Dirs())},
	}
	if pr.store != nil {
		checks = append(checks, admin.Check{Name: "storage", Dependency: "storage", Run: pr.store.CheckBucket})
	}
	mon, err := admin.ParseMonitor(cfg.Admin.Monitor)
	if err != nil {
		return nil, fmt.Errorf("admin.monitor: %w", err)
	}
	if cfg.Admin.Listen == "" {
		mon = admin.MonitorOff
	}
	// The web UI reaches Redis with the same options as the queue.
	pr.adm = admin.New(admin.Options{Token: cfg.Admin.Token, Checks: checks, PProf: cfg.Debug.PProf,
		Monitor: mon, Redis: p.redisOpt()})
	return pr, nil
}

// newReconciler builds the scan and watch of the roots (nil when reconcile.enabled is off). In a
// process without the receiver (a worker) it only holds files in the spool (nil without a spool):
// files written while the hooks process is down are then safe from SRS's cleanup, and that
// process's reconciler enqueues them from the spool once it is back.
func (pr *process) newReconciler() *reconcile.Reconciler {
	p, c := pr.p, pr.p.cfg.Reconcile
	if p.layout == nil || (!pr.r.hooks && p.spool == nil) {
		return nil
	}
	rec := &reconcile.Reconciler{
		Roots: p.roots, Spool: p.spool, Layout: p.layout, HLSKey: p.keys.HLS, DVRKey: p.keys.DVR,
		MinAge: c.MinAge, Interval: c.Interval, Recheck: max(c.Interval, 30*time.Minute), Watch: c.Watch, Log: pr.log,
		Scope: p.scope, PruneAfter: 5 * time.Minute,
	}
	if p.scope.Shared() {
		claims := pr.claims()
		rec.Busy = claims.Busy
	}
	if pr.r.hooks {
		rec.Queue = pr.qc
		if p.cfg.Playlist.Enabled {
			rec.Placer = &reconcile.Placer{Roots: p.roots, M3U8: c.HLSM3U8File, PlaylistKey: p.keys.Playlist, Log: pr.log}
		}
	}
	return rec
}

// claims are the claims of a shared volume's files (queue.scope shared:<name>) in Redis.
func (pr *process) claims() *claim.Claims {
	return &claim.Claims{RDB: pr.rdb, Volume: pr.p.scope.Volume}
}

// newHooks builds the hook receiver, with on_hls_notify warming when warm.targets are set.
func (pr *process) newHooks(playlists *playlist.Receiver) *hook.Handler {
	p, cfg := pr.p, pr.p.cfg
	in := &hook.Intake{Roots: p.roots, Keys: p.keys, Queue: pr.qc, Timeout: cfg.Hooks.EnqueueTimeout, Scope: p.scope, Log: pr.log}
	if cfg.Playlist.Enabled {
		in.Playlists, in.Purged = playlists, playlists
	}
	if p.spool != nil {
		in.Spool = p.spool
	}
	if pr.rec != nil {
		in.Unrecorded = pr.rec.Kick
	}
	h := &hook.Handler{Intake: in, Token: cfg.Hooks.Token, Log: pr.log}
	if cfg.Playlist.Enabled && cfg.Playlist.Live == "served" {
		h.Live = &playlist.Served{Ledger: playlists.Ledger, Prefix: cfg.Playlist.LivePath, Base: cfg.Playlist.SegmentURL, MaxAge: 1}
	}
	if pr.rendez != nil {
		h.Notify = &warm.Intake{Pattern: p.notify, Folders: playlists, Fallback: p.folder, HLSKey: p.keys.HLS,
			Rendezvous: pr.rendez, Enqueue: pr.qc.EnqueueWarm}
	}
	return h
}

// newPlaylists builds the worker's playlist manager, which publishes to store.
func newPlaylists(p *plan, ledger *playlist.Ledger, store playlist.Store, log *slog.Logger) *playlist.Manager {
	return &playlist.Manager{
		Ledger: ledger, Store: store, VODKey: p.vodKey,
		EndLive: p.cfg.Playlist.EndLive, VODWait: p.cfg.Playlist.VODWait, Node: p.queueNode(), Log: log,
		Served: p.cfg.Playlist.Live == "served", Interval: p.cfg.Playlist.PublishInterval,
	}
}

// newWorker builds the storage client (reaching the bucket when connect is set), the asynq
// server with the offload, session-end and warm handlers, the playlist sweeper and the multipart
// janitor.
func (pr *process) newWorker(ctx context.Context, connect bool) error {
	p, cfg, log := pr.p, pr.p.cfg, pr.log
	if connect {
		startCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		up, err := openStorage(startCtx, p)
		cancel()
		if err != nil {
			return err
		}
		pr.store = up
	} else {
		up, err := newStorage(ctx, p)
		if err != nil {
			return err
		}
		pr.store = up
	}
	up := pr.store
	pr.wrdb = p.redis.Client(cfg.Hooks.EnqueueTimeout)
	pr.wledger = playlist.New(pr.wrdb, playlist.Settings{Window: cfg.Playlist.Window, Stall: cfg.Playlist.Stall, Retain: cfg.Playlist.Retain})
	playlists := newPlaylists(p, pr.wledger, up, log)
	off := &worker.Offloader{Roots: p.roots, Store: up, Spool: p.spool, Purge: cfg.Purge.Enabled, Scope: p.scope, Log: log,
		Progress: &progress.Tracker{Redis: pr.rdb, Node: cfg.Node, Log: log}, ProgressMin: int64(cfg.Storage.MultipartThreshold)}
	if p.scope.Shared() {
		off.Claims = pr.claims()
	}
	opts := worker.Options{
		Node: p.queueNode(), Concurrency: cfg.Worker.Concurrency,
		RetryBase: cfg.Worker.RetryBase, RetryMax: cfg.Worker.RetryMax,
		ShutdownTimeout: cfg.Worker.ShutdownTimeout, PollInterval: cfg.Worker.PollInterval, Log: log,
	}
	if cfg.Playlist.Enabled {
		off.Playlists, off.Purges = playlists, playlists
		opts.Ender = playlists
		qc := pr.qc
		pr.sweep = &worker.Sweeper{Every: min(max(cfg.Playlist.Idle/4, time.Second), 5*time.Second), Log: log,
			Sweep: func(ctx context.Context) error {
				return playlists.Sweep(ctx, cfg.Playlist.Idle, func(e queue.End) error { return qc.EnqueueEnd(ctx, e) })
			}}
	}
	if pr.rendez != nil {
		warmer, err := warm.NewWarmer(p.targets, cfg.Storage.Bucket, cfg.Storage.Prefix, log)
		if err != nil {
			return err
		}
		opts.Warmer = warmer
		off.Warms = &warm.Trigger{Rendezvous: pr.rendez, Enqueue: pr.qc.EnqueueWarm, OnUpload: cfg.Warm.OnUpload}
	}
	pr.newPost(up, off, playlists)
	pr.ws = worker.NewServer(pr.p.redisOpt(), opts, off)
	// Multipart uploads older than the longest attempt belong to killed workers.
	pr.jan = &uploader.Janitor{Uploader: up, OlderThan: cfg.Worker.Timeout + time.Minute, Every: time.Minute, Log: log}
	return nil
}

// start starts the duties: the worker with its sweeper and janitor, the reconciler, the admin
// checks, and last the listeners (hooks are taken once everything behind them runs).
func (pr *process) start(ctx context.Context) error {
	cfg := pr.p.cfg
	if pr.ws != nil {
		if err := pr.ws.Start(); err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		if pr.sweep != nil {
			pr.sweep.Start()
		}
		if pr.postSrv != nil {
			if err := pr.postSrv.Start(); err != nil {
				return fmt.Errorf("post: %w", err)
			}
			pr.log.Info("post-processing started", "queue", queue.Name(queue.KindPost, pr.p.queueNode()), "concurrency", cfg.Post.Concurrency,
				"webhooks", len(cfg.Post.Webhooks), "remux", cfg.Post.Remux, "poster", cfg.Post.Poster.Enabled, "session_mp4", cfg.Post.SessionMP4.Enabled)
		}
		pr.jan.Start()
		pr.log.Info("worker started", "node", cfg.Node, "queues", queue.Queues(pr.p.queueNode()), "concurrency", cfg.Worker.Concurrency,
			"bucket", pr.store.Bucket(), "purge", cfg.Purge.Enabled, "warm_targets", len(cfg.Warm.Targets))
	}
	if pr.rec != nil {
		pr.rec.Start()
	}
	if pr.meter != nil {
		pr.meter.Start()
	}
	admin.SetBuildInfo(version, commit)
	collector := metrics.NewQueueMetricsCollector(pr.inspector)
	if err := prometheus.Register(collector); err == nil {
		pr.collector = collector
	}
	actx, cancel := context.WithCancel(context.Background())
	pr.admOn = cancel
	pr.admWG.Add(1)
	go func() {
		defer pr.admWG.Done()
		pr.adm.Watch(actx, 15*time.Second)
	}()
	srvs, err := pr.serveListeners(ctx)
	if err != nil {
		return err
	}
	pr.srvs = srvs
	if pr.r.hooks {
		pr.log.Info("hook receiver ready", "roots", pr.p.roots.String(), "node", cfg.Node)
	}
	return nil
}

// shutdown stops the duties that were started, in this order, and waits for each within ctx:
// the listeners (no hook is taken any more; those in flight get hooks.read_timeout +
// hooks.enqueue_timeout), the worker (running uploads get worker.shutdown_timeout, then go back
// to the queue), the sweeper and the janitor, and last the reconciler and its watcher, which
// keep taking files into the spool while the rest stops.
func (pr *process) shutdown(ctx context.Context) error {
	var errs []error
	if pr.srvs != nil {
		hctx, cancel := context.WithTimeout(ctx, pr.p.hookDrain())
		errs = append(errs, pr.srvs.shutdown(hctx))
		cancel()
	}
	if pr.ws != nil {
		errs = append(errs, pr.ws.Shutdown(ctx))
	}
	if pr.sweep != nil {
		errs = append(errs, pr.sweep.Shutdown(ctx))
	}
	if pr.postSrv != nil {
		errs = append(errs, pr.postSrv.Shutdown(ctx))
	}
	if pr.jan != nil {
		errs = append(errs, pr.jan.Shutdown(ctx))
	}
	if pr.admOn != nil {
		pr.admOn()
		pr.admWG.Wait()
	}
	if pr.rec != nil {
		errs = append(errs, pr.rec.Shutdown(ctx))
	}
	if pr.meter != nil {
		errs = append(errs, pr.meter.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// close lets go of the clients (after shutdown).
func (pr *process) close() {
	if pr.collector != nil {
		prometheus.Unregister(pr.collector)
	}
	if pr.inspector != nil {
		pr.inspector.Close()
	}
	if pr.adm != nil {
		pr.adm.Close()
	}
	if pr.rdb != nil {
		pr.rdb.Close()
	}
	if pr.wrdb != nil {
		pr.wrdb.Close()
	}
	if pr.qc != nil {
		pr.qc.Close()
	}
}
