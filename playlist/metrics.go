package playlist

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var sweepStreams = promauto.NewGauge(prometheus.GaugeOpts{
	Name: "srs_offload_sweep_streams",
	Help: "Active streams the last playlist sweep visited.",
})
