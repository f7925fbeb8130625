package remux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// FastStart reports whether the MP4 at path has its moov box before its mdat box (it plays
// before it is downloaded whole). It reads only the top-level box headers.
func FastStart(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var off int64
	hdr := make([]byte, 16)
	for {
		if _, err := f.ReadAt(hdr[:8], off); err != nil {
			if errors.Is(err, io.EOF) {
				return false, fmt.Errorf("%s: no moov and mdat boxes: not an MP4", path)
			}
			return false, err
		}
		size := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		switch typ {
		case "moov":
			return true, nil
		case "mdat":
			return false, nil
		}
		switch size {
		case 0:
			return false, fmt.Errorf("%s: box %q runs to the end before any moov or mdat", path, typ)
		case 1:
			if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
				return false, err
			}
			size = int64(binary.BigEndian.Uint64(hdr[8:16]))
		}
		if size < 8 {
			return false, fmt.Errorf("%s: bad box size %d at %d", path, size, off)
		}
		off += size
	}
}
