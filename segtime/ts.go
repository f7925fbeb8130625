package segtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
)

const (
	tsPacket = 188
	ptsHz    = 90000
	ptsWrap  = 1 << 33
	// maxADTS bounds how much of an audio PES is kept to count its ADTS frames.
	maxADTS = 64 << 10
)

// tsStream is what is learnt of one elementary stream (one PID carrying PES).
type tsStream struct {
	audio bool
	first int64   // PTS of its first PES, the origin of the unwrapped times below
	pts   []int64 // PTS of every PES, unwrapped relative to first
	last  []byte  // payload of the last PES (audio only, up to maxADTS)
	// lastFrames is the duration of the last PES in 90 kHz ticks, when its ADTS frames say so.
	lastFrames int64
}

// TS reads an MPEG-TS segment to its end and returns its timing.
func TS(r io.Reader) (Timing, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	streams := map[uint16]*tsStream{}
	var order []uint16
	buf := make([]byte, tsPacket)
	for n := 0; ; n++ {
		if _, err := io.ReadFull(br, buf); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				break // a short last packet: SRS never writes one, but the packets before it count
			}
			return Timing{}, fmt.Errorf("mpeg-ts: read packet %d: %w", n, err)
		}
		if buf[0] != 0x47 {
			return Timing{}, fmt.Errorf("mpeg-ts: packet %d (byte %d) has no sync byte 0x47: not an MPEG-TS file", n, n*tsPacket)
		}
		pusi := buf[1]&0x40 != 0
		pid := uint16(buf[1]&0x1f)<<8 | uint16(buf[2])
		afc := buf[3] >> 4 & 0x3
		payload := buf[4:]
		switch afc {
		case 0, 2:
			continue // no payload
		case 3:
			l := int(payload[0])
			if 1+l > len(payload) {
				continue
			}
			payload = payload[1+l:]
		}
		st := streams[pid]
		if pusi {
			pts, audio, ok := pesPTS(payload)
			if !ok {
				continue
			}
			if st == nil {
				st = &tsStream{audio: audio, first: pts}
				streams[pid] = st
				order = append(order, pid)
			}
			st.pts = append(st.pts, unwrap(pts-st.first))
			if st.audio {
				st.last = append(st.last[:0], pesPayload(payload)...)
			}
			continue
		}
		if st != nil && st.audio && len(st.last)+len(payload) <= maxADTS {
			st.last = append(st.last, payload...)
		}
	}
	var s span
	for _, pid := range order {
		st := streams[pid]
		p := slices.Clone(st.pts)
		slices.Sort(p)
		lo, hi := p[0], p[len(p)-1]
		var last int64
		if n := adtsTicks(st.last); st.audio && n > 0 {
			last = n
		} else if len(p) > 1 {
			last = (hi - lo) / int64(len(p)-1) // the mean frame interval
		}
		start := float64(st.first+lo) / ptsHz
		s.add(start, start+float64(hi-lo+last)/ptsHz)
	}
	return s.timing("mpeg-ts")
}

// unwrap maps a PTS difference (mod 2^33) to the nearest signed value.
func unwrap(d int64) int64 {
	d = ((d % ptsWrap) + ptsWrap) % ptsWrap
	if d >= ptsWrap/2 {
		d -= ptsWrap
	}
	return d
}

// pesPTS reads the PTS of a PES header at the start of a packet's payload. audio: an MPEG audio
// stream id (0xC0–0xDF); video is 0xE0–0xEF, private stream 1 (0xBD) also counts as media.
func pesPTS(b []byte) (pts int64, audio, ok bool) {
	if len(b) < 14 || b[0] != 0 || b[1] != 0 || b[2] != 1 {
		return 0, false, false
	}
	sid := b[3]
	media := sid == 0xBD || (sid >= 0xC0 && sid <= 0xEF)
	if !media || b[7]&0x80 == 0 {
		return 0, false, false
	}
	p := b[9:14]
	pts = int64(p[0]>>1&0x07)<<30 | int64(p[1])<<22 | int64(p[2]>>1)<<15 | int64(p[3])<<7 | int64(p[4]>>1)
	return pts, sid >= 0xC0 && sid <= 0xDF, true
}

// pesPayload is what follows the PES header in the packet that starts it.
func pesPayload(b []byte) []byte {
	h := 9 + int(b[8])
	if h > len(b) {
		return nil
	}
	return b[h:]
}

// adtsTicks is the duration in 90 kHz ticks of the whole ADTS frames at the start of b (AAC in
// MPEG-TS), or 0 when b does not start with one.
func adtsTicks(b []byte) int64 {
	rates := [...]int64{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
	var ticks int64
	for len(b) >= 7 && b[0] == 0xFF && b[1]&0xF6 == 0xF0 {
		ri := int(b[2] >> 2 & 0x0F)
		n := int(b[3]&0x03)<<11 | int(b[4])<<3 | int(b[5]>>5)
		if ri >= len(rates) || n < 7 || n > len(b) {
			break
		}
		blocks := int64(b[6]&0x03) + 1
		ticks += blocks * 1024 * ptsHz / rates[ri]
		b = b[n:]
	}
	return ticks
}
