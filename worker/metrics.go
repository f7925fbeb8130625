package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	tasks = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_tasks_total",
		Help: "Offload task attempts by kind (hls, dvr) and outcome (ok, retry, permanent).",
	}, []string{"kind", "outcome"})
	uploadedBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_uploaded_bytes_total",
		Help: "Bytes stored and verified.",
	}, []string{"kind"})
	sentBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_sent_bytes_total",
		Help: "Bytes of local files handed to storage, counted as they are sent (a part sent again after an error counts again).",
	}, []string{"kind"})
	uploadSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "srs_offload_upload_seconds",
		Help:    "Time to upload and verify one file.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
	}, []string{"kind"})
	hookToStored = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "srs_offload_hook_to_stored_seconds",
		Help:    "Time from the hook to the verified object in storage.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
	}, []string{"kind"})
	purged = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_purged_files_total",
		Help: "Local files deleted after verification.",
	}, []string{"kind"})
	purgeFailures = promauto.NewCounter(prometheus.CounterOpts{
		Name: "srs_offload_purge_failures_total",
		Help: "Verified files whose local copy could not be deleted.",
	})
	verifyFailures = promauto.NewCounter(prometheus.CounterOpts{
		Name: "srs_offload_verify_failures_total",
		Help: "Uploads whose stored bytes did not match the local file (the file was kept).",
	})
	sweepSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "srs_offload_sweep_duration_seconds",
		Help:    "Wall time of one playlist sweep (every active stream: stalled segments, idle sessions, live playlists left unpublished).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
	sweepCPU = promauto.NewCounter(prometheus.CounterOpts{
		Name: "srs_offload_sweep_cpu_seconds_total",
		Help: "CPU time of the playlist sweeps (the sweeping thread's own).",
	})
)
