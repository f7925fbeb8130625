package main

import (
	"reflect"
	"testing"
)

// The reader of the metrics the alerts and the dashboard name (promqlSelectors) on the shapes
// they use.
func TestPromQLSelectors(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want map[string][]string
	}{
		{`up{job="srs-offload"} == 0`, map[string][]string{"up": {"job"}}},
		{`srs_offload_disk_pending_bytes > 10 * 1024 * 1e9`, map[string][]string{"srs_offload_disk_pending_bytes": nil}},
		{`max by (queue) (asynq_tasks_enqueued_total{state="archived", queue=~"$queue"}) > 0`,
			map[string][]string{"asynq_tasks_enqueued_total": {"state", "queue"}}},
		{`histogram_quantile(0.99, sum by (le, kind) (rate(srs_offload_upload_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`,
			map[string][]string{"srs_offload_upload_seconds_bucket": {"instance"}}},
		{"sum by (instance, target) (rate(srs_offload_warm_total{outcome=\"failed\"}[10m]))\n  / sum by (instance, target) (rate(srs_offload_warm_total[10m])) > 0.1",
			map[string][]string{"srs_offload_warm_total": {"outcome"}}},
		{`increase(a_total[15m] offset 5m) > 0 and on (instance) b unless sum(c) without (x)`,
			map[string][]string{"a_total": nil, "b": nil, "c": nil}},
		{`rate(x{a="}{,", b!~'q'}[5m:1m])`, map[string][]string{"x": {"a", "b"}}},
	} {
		got, err := promqlSelectors(tc.expr)
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`{__name__="x"}`, `x{a="b"`, `x{a}`} {
		if _, err := promqlSelectors(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
