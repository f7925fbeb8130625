// Package webhook tells the operator's application that an object is in storage: a JSON POST
// per event to each configured URL, signed like Stripe's webhooks (HMAC-SHA256 over the
// timestamp and the body), with an id per event that stays the same on every delivery so the
// receiver can drop repeats. Delivery classifies each answer as done, worth retrying (a
// connection error, a timeout, 408, 429, 5xx) or final (any other status).
//
// Headers of every delivery:
//
//	Content-Type: application/json
//	Srs-Offload-Event-Id: evt_4f0c…            (the same on every delivery of one event)
//	Srs-Offload-Event: dvr.stored
//	Srs-Offload-Signature: t=1764680000,v1=5257a869…
//
// To verify, a receiver takes t and every v1 from Srs-Offload-Signature, computes
// hex(HMAC-SHA256(secret, t + "." + raw body)) and compares it in constant time with a v1; it
// refuses a t too far from its clock (Verify does all of this, with a tolerance). The timestamp
// is signed, so an old delivery cannot be replayed later with a fresh t.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderSignature = "Srs-Offload-Signature"
	HeaderEventID   = "Srs-Offload-Event-Id"
	HeaderEvent     = "Srs-Offload-Event"
)

// Sign returns the value of the signature header for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrNoSignature  = errors.New("webhook: no valid t= and v1= in the signature header")
	ErrBadSignature = errors.New("webhook: no v1 signature matches the body")
	ErrTooOld       = errors.New("webhook: signature timestamp outside the tolerance")
)

// Verify checks a signature header against body, as a receiver does: some v1 must be the
// HMAC of "t.body", and t within tolerance of now (0: not checked).
func Verify(secret []byte, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs []string
	for _, f := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	want := []byte(mac(secret, ts, body))
	ok := false
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: signed %s ago", ErrTooOld, d.Round(time.Second))
		}
	}
	return nil
}
