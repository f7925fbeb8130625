package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/queue"
)

// An fMP4 init segment is never purged, whichever hook named it: on_dvr reporting an init.mp4 (a
// dvr_path pointing into the HLS folder, a forged hook) stores it and keeps it, while a DVR .mp4
// recording next to it is purged as usual.
func TestInitSegmentKeptFromDVR(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	for i, rel := range []string{"live/cam1/init.mp4", "live/cam2-init.mp4"} {
		want := r.writeRandom(rel, 1500)
		p := r.payload(queue.KindDVR, rel, rel)
		rec := fmt.Sprintf("live/cam%d.1795474211735.mp4", i+1)
		recWant := r.writeRandom(rec, 4000)
		pr := r.payload(queue.KindDVR, rec, rec)
		r.enqueue(p, pr)
		if rel == "live/cam1/init.mp4" {
			r.start(0)
		}
		r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
		r.wait(pr, asynq.TaskStateCompleted, 10*time.Second)
		r.stored(rel, want)
		hasContent(t, p.Path, want)
		r.stored(rec, recWant)
		gone(t, pr.Path)
	}
}
