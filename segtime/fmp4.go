package segtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxBox bounds the boxes read into memory (moov, moof); media data (mdat) is skipped, not read.
const maxBox = 16 << 20

// Init is what a fragment's timing needs from its fMP4 init segment: each track's timescale (mdhd)
// and default sample duration (trex).
type Init struct {
	Timescale       map[uint32]uint32
	DefaultDuration map[uint32]uint32
	// Shift is what the track's edit list (edts/elst) subtracts from its decode times, in the
	// track's timescale: the media time its presentation starts at, less any empty edit before.
	Shift map[uint32]int64
	// movieScale is mvhd's timescale, the unit of an edit's duration.
	movieScale uint32
}

// ParseInit reads an fMP4 init segment (ftyp, moov).
func ParseInit(r io.Reader) (*Init, error) {
	in := &Init{Timescale: map[uint32]uint32{}, DefaultDuration: map[uint32]uint32{}, Shift: map[uint32]int64{}}
	err := eachBox(r, func(typ string, body []byte) error {
		if typ != "moov" {
			return nil
		}
		return walk(body, func(typ string, b []byte) error {
			switch typ {
			case "mvhd":
				off := 4 + 8
				if len(b) > 0 && b[0] == 1 {
					off = 4 + 16
				}
				if len(b) < off+4 {
					return errShort
				}
				in.movieScale = be32(b[off:])
			case "trak":
				return in.trak(b)
			case "mvex":
				return walk(b, func(typ string, b []byte) error {
					if typ == "trex" && len(b) >= 4+16 {
						id := be32(b[4:])
						in.DefaultDuration[id] = be32(b[12:])
					}
					return nil
				})
			}
			return nil
		})
	}, "moov")
	if err != nil {
		return nil, fmt.Errorf("fmp4 init: %w", err)
	}
	if len(in.Timescale) == 0 {
		return nil, fmt.Errorf("fmp4 init: no track with a timescale (moov/trak/mdia/mdhd): not an init segment")
	}
	return in, nil
}

func (in *Init) trak(b []byte) error {
	var id, scale uint32
	var edits []byte
	err := walk(b, func(typ string, b []byte) error {
		switch typ {
		case "edts":
			return walk(b, func(typ string, b []byte) error {
				if typ == "elst" {
					edits = b
				}
				return nil
			})
		case "tkhd":
			if len(b) < 4 {
				return errShort
			}
			off := 4 + 8 // version 0: creation, modification time (32 bits each)
			if b[0] == 1 {
				off = 4 + 16
			}
			if len(b) < off+4 {
				return errShort
			}
			id = be32(b[off:])
		case "mdia":
			return walk(b, func(typ string, b []byte) error {
				if typ != "mdhd" || len(b) < 4 {
					return nil
				}
				off := 4 + 8
				if b[0] == 1 {
					off = 4 + 16
				}
				if len(b) < off+4 {
					return errShort
				}
				scale = be32(b[off:])
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if scale > 0 {
		in.Timescale[id] = scale
		in.Shift[id] = in.shift(edits, scale)
	}
	return nil
}

// shift reads an edit list: the media time of its first edit that plays media, less the empty
// edits before it (in the movie's timescale, converted to the track's).
func (in *Init) shift(b []byte, scale uint32) int64 {
	if len(b) < 8 {
		return 0
	}
	v1 := b[0] == 1
	n := be32(b[4:])
	b = b[8:]
	var empty int64
	for range n {
		var dur uint64
		var mt int64
		if v1 {
			if len(b) < 20 {
				return 0
			}
			dur, mt = binary.BigEndian.Uint64(b), int64(binary.BigEndian.Uint64(b[8:]))
			b = b[20:]
		} else {
			if len(b) < 12 {
				return 0
			}
			dur, mt = uint64(be32(b)), int64(int32(be32(b[4:])))
			b = b[12:]
		}
		if mt == -1 {
			if in.movieScale > 0 && dur < 1<<40 {
				empty += int64(dur) * int64(scale) / int64(in.movieScale)
			}
			continue
		}
		return mt - empty
	}
	return 0
}

// Fragment reads an fMP4 media segment (one or more moof+mdat) to its end and returns its timing.
func (in *Init) Fragment(r io.Reader) (Timing, error) {
	var s span
	err := eachBox(r, func(typ string, body []byte) error {
		if typ != "moof" {
			return nil
		}
		return walk(body, func(typ string, b []byte) error {
			if typ != "traf" {
				return nil
			}
			start, end, id, ok, err := in.traf(b)
			if err != nil || !ok {
				return err
			}
			scale, sh := float64(in.Timescale[id]), float64(in.Shift[id])
			s.add((float64(start)-sh)/scale, (float64(end)-sh)/scale)
			return nil
		})
	}, "moof")
	if err != nil {
		return Timing{}, fmt.Errorf("fmp4 segment: %w", err)
	}
	return s.timing("fmp4 segment")
}

// traf reads one track fragment: its base decode time and the end of its last sample, in the
// track's timescale. ok is false for a fragment without samples.
func (in *Init) traf(b []byte) (start, end uint64, id uint32, ok bool, err error) {
	var defDur uint32
	var haveTfdt bool
	var total uint64
	var samples bool
	err = walk(b, func(typ string, b []byte) error {
		switch typ {
		case "tfhd":
			if len(b) < 8 {
				return errShort
			}
			flags := be24(b[1:])
			id = be32(b[4:])
			if _, known := in.Timescale[id]; !known {
				return fmt.Errorf("track %d is not in the init segment", id)
			}
			defDur = in.DefaultDuration[id]
			off := 8
			if flags&0x01 != 0 {
				off += 8 // base_data_offset
			}
			if flags&0x02 != 0 {
				off += 4 // sample_description_index
			}
			if flags&0x08 != 0 {
				if len(b) < off+4 {
					return errShort
				}
				defDur = be32(b[off:])
			}
		case "tfdt":
			if len(b) < 8 {
				return errShort
			}
			if b[0] == 1 {
				if len(b) < 12 {
					return errShort
				}
				start = binary.BigEndian.Uint64(b[4:])
			} else {
				start = uint64(be32(b[4:]))
			}
			haveTfdt = true
		case "trun":
			if len(b) < 8 {
				return errShort
			}
			flags := be24(b[1:])
			n := uint64(be32(b[4:]))
			off := 8
			if flags&0x01 != 0 {
				off += 4 // data_offset
			}
			if flags&0x04 != 0 {
				off += 4 // first_sample_flags
			}
			per := 0
			for _, f := range []uint32{0x100, 0x200, 0x400, 0x800} {
				if flags&f != 0 {
					per += 4
				}
			}
			if uint64(len(b)-min(off, len(b))) < n*uint64(per) || off > len(b) {
				return fmt.Errorf("trun: %d samples do not fit in %d bytes", n, len(b))
			}
			if n > 0 {
				samples = true
			}
			if flags&0x100 == 0 {
				total += n * uint64(defDur)
				return nil
			}
			for i := uint64(0); i < n; i++ {
				total += uint64(be32(b[off+int(i)*per:]))
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, 0, false, fmt.Errorf("traf: %w", err)
	}
	if !samples {
		return 0, 0, id, false, nil
	}
	if !haveTfdt {
		return 0, 0, id, false, fmt.Errorf("traf of track %d: no tfdt, so its start is unknown", id)
	}
	return start, start + total, id, true, nil
}

var errShort = errors.New("box shorter than its fields")

// eachBox reads the top-level boxes of r: those of type want are read whole and handed to fn,
// the others (media data) are skipped.
func eachBox(r io.Reader, fn func(typ string, body []byte) error, want string) error {
	var h [16]byte
	for {
		if _, err := io.ReadFull(r, h[:8]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("box header: %w", err)
		}
		size := uint64(be32(h[:]))
		typ := string(h[4:8])
		hdr := uint64(8)
		switch size {
		case 0: // to the end of the file
			if typ != want {
				return nil
			}
			body, err := io.ReadAll(io.LimitReader(r, maxBox))
			if err != nil {
				return fmt.Errorf("box %q: %w", typ, err)
			}
			return fn(typ, body)
		case 1:
			if _, err := io.ReadFull(r, h[8:16]); err != nil {
				return fmt.Errorf("box %q: large size: %w", typ, err)
			}
			size, hdr = binary.BigEndian.Uint64(h[8:16]), 16
		}
		if size < hdr {
			return fmt.Errorf("box %q: size %d below its header", typ, size)
		}
		n := size - hdr
		if typ != want {
			if _, err := io.CopyN(io.Discard, r, int64(min(n, 1<<62))); err != nil {
				return fmt.Errorf("box %q: %w", typ, err)
			}
			continue
		}
		if n > maxBox {
			return fmt.Errorf("box %q: %d bytes, more than a %s holds", typ, n, want)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("box %q: %w", typ, err)
		}
		if err := fn(typ, body); err != nil {
			return err
		}
	}
}

// walk calls fn for each box inside b (a container's body).
func walk(b []byte, fn func(typ string, body []byte) error) error {
	for len(b) > 0 {
		if len(b) < 8 {
			return fmt.Errorf("%d stray bytes after the last box", len(b))
		}
		size := uint64(be32(b))
		typ := string(b[4:8])
		hdr := uint64(8)
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return errShort
			}
			size, hdr = binary.BigEndian.Uint64(b[8:16]), 16
		}
		if size < hdr || size > uint64(len(b)) {
			return fmt.Errorf("box %q: size %d does not fit in its container (%d bytes)", typ, size, len(b))
		}
		if err := fn(typ, b[hdr:size]); err != nil {
			return err
		}
		b = b[size:]
	}
	return nil
}

func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

func be24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }
