package reconcile

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	reconciled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_reconciled_total",
		Help: "Files the reconciler looked at whose hook never came, by kind and result (enqueued, known: the hook's task was there, unmatched: no layout gives its key).",
	}, []string{"kind", "result"})
	pendingFiles = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "srs_offload_disk_pending_files",
		Help: "Media files on disk (spool included) not yet stored, at the last scan.",
	})
	pendingBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "srs_offload_disk_pending_bytes",
		Help: "Bytes of the media files on disk not yet stored, at the last scan.",
	})
	oldestPending = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "srs_offload_disk_oldest_pending_seconds",
		Help: "Age of the oldest media file on disk not yet stored, at the last scan (the backlog's age).",
	})
	scanSeconds = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "srs_offload_reconcile_scan_seconds",
		Help: "Duration of the last full scan of the roots.",
	})
	watchedDirs = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "srs_offload_watched_dirs",
		Help: "Folders the fsnotify watcher watches.",
	})
	watchFiles = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_watch_files_total",
		Help: "Files the watcher saw appear, by result (held: this process had just taken it into the spool, its hook came first, nothing more to do; looked: the watcher took it and checks it again at min_age).",
	}, []string{"result"})
	watchTrouble = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_watch_errors_total",
		Help: "Watcher problems by reason (overflow: events lost, a full scan follows; add: a folder could not be watched, e.g. fs.inotify.max_user_watches).",
	}, []string{"reason"})
)

func report(st Stats) {
	pendingFiles.Set(float64(st.Pending))
	pendingBytes.Set(float64(st.Bytes))
	oldestPending.Set(st.Oldest.Seconds())
	scanSeconds.Set(st.Took.Seconds())
}

// The watcher's problem counters exist from the start, at 0, so a dashboard's rate() and an alert
// see the series before the first problem.
func init() {
	for _, reason := range []string{"overflow", "add"} {
		watchTrouble.WithLabelValues(reason)
	}
	for _, res := range []string{"held", "looked"} {
		watchFiles.WithLabelValues(res)
	}
}
