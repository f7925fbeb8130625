package remux_test

import (
	"fmt"
	osexec "os/exec"
)

// runPlain makes a plain MP4 (moov at the end), as SRS's DVR writes one.
func runPlain(ffmpeg, in, out string) error {
	b, err := osexec.Command(ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", in, "-c", "copy", "-f", "mp4", out).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, b)
	}
	return nil
}
