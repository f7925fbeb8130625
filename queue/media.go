package queue

import "github.com/srs-offload/srs-offload/media"

// TypeOf is the one decision of what a file of a task is: the media type of the file at path as
// the hook of kind names it (KindHLS: on_hls, KindDVR: on_dvr). The receiver (which files it
// accepts, which it spools), the worker (Content-Type, whether it purges) and the reconciler
// (which files it holds) all decide through it, so a DVR .mp4 recording is a recording
// everywhere and an fMP4 init segment is an init segment everywhere. ok is false for a file that
// hook never names, and for any other kind.
func TypeOf(kind, path string) (t media.Type, ok bool) {
	switch kind {
	case KindHLS:
		return media.ForHLS(path)
	case KindDVR:
		return media.ForDVR(path)
	}
	return media.Type{}, false
}

// Type is the media type of the task's file: TypeOf(p.Kind, p.Path).
func (p Offload) Type() (media.Type, bool) { return TypeOf(p.Kind, p.Path) }

// Moved reports whether some hook names a file like path: a media file srs-offload uploads
// (an HLS segment or init segment, a DVR recording), as opposed to a playlist, a key or a
// temporary file.
func Moved(path string) bool {
	_, hls := TypeOf(KindHLS, path)
	_, dvr := TypeOf(KindDVR, path)
	return hls || dvr
}
