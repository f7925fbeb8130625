package reconcile_test

import (
	"testing"

	"github.com/srs-offload/srs-offload/reconcile"
)

// A template that is not UTF-8 is an error, not a panic (the fuzzer's "0\xff").
func TestLayoutNotUTF8(t *testing.T) {
	for _, tmpl := range []string{"0\xff", "[app]/\xc3[stream].ts"} {
		if err := reconcile.CheckTemplate(tmpl); err == nil {
			t.Errorf("CheckTemplate(%q) = nil", tmpl)
		}
		if _, err := reconcile.NewLayout([]string{tmpl}, nil); err == nil {
			t.Errorf("NewLayout(%q) = nil error", tmpl)
		}
	}
}
