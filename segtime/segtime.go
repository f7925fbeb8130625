// Package segtime reads the timing of an HLS media segment from its bytes: where it starts on the
// stream's timeline and how long it plays. It is how srs-offload learns the duration of a segment
// whose hook never came and which SRS's own .m3u8 no longer lists.
//
// Two containers, as SRS writes them, in plain Go (no cgo, no ffmpeg):
//   - MPEG-TS (TS): the PTS of the first and last frames of every elementary stream, plus the last
//     frame's duration (AAC: counted from its ADTS frames; otherwise the stream's mean frame
//     interval);
//   - fMP4 (Fragment): each track fragment's tfdt base decode time and its trun sample durations,
//     in the track's timescale from the init segment's mdhd (ParseInit).
//
// A segment's start is the earliest start of its streams, its duration reaches to the latest end.
package segtime

import (
	"errors"
	"fmt"
)

// Timing is where a segment sits on its stream's timeline, in seconds.
type Timing struct {
	// Start is the presentation (TS) or decode (fMP4) time of its first sample.
	Start float64
	// Duration is how long it plays: from Start to the end of its last sample.
	Duration float64
}

// ErrNoTiming means the bytes parse but hold no timed sample (no PES with a PTS, no trun).
var ErrNoTiming = errors.New("no timed samples in the segment")

// span accumulates start and end times of streams, in seconds.
type span struct {
	start, end float64
	ok         bool
}

func (s *span) add(start, end float64) {
	if !s.ok || start < s.start {
		s.start = start
	}
	if !s.ok || end > s.end {
		s.end = end
	}
	s.ok = true
}

func (s span) timing(what string) (Timing, error) {
	if !s.ok {
		return Timing{}, fmt.Errorf("%s: %w", what, ErrNoTiming)
	}
	return Timing{Start: s.start, Duration: s.end - s.start}, nil
}
