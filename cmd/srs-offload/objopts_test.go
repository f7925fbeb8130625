package main

import (
	"testing"

	"github.com/srs-offload/srs-offload/settings"
)

// The object options' templates are parsed at config time; a variable not every stored object
// knows, or a broken brace, is a problem naming the template's key.
func TestCompileObjectOptions(t *testing.T) {
	for _, tc := range []struct {
		key    string
		mutate func(c *settings.Config)
	}{
		{"storage.tags.where", func(c *settings.Config) { c.Storage.Tags = map[string]string{"ok": "{app}", "where": "{path}"} }},
		{"storage.metadata.stream", func(c *settings.Config) { c.Storage.Metadata = map[string]string{"stream": "{app"} }},
		{"storage.content_disposition", func(c *settings.Config) { c.Storage.ContentDisposition = `attachment; filename="{url}"` }},
	} {
		c := validConfig(t)
		tc.mutate(&c)
		_, err := compile(c)
		errs, ok := settings.AsErrors(err)
		if !ok || len(errs) != 1 || !errs.Has(tc.key) {
			t.Errorf("%s: %v; want one problem there", tc.key, err)
		}
	}
	c := validConfig(t)
	c.Storage.StorageClass, c.Storage.StorageClassDVR = "STANDARD_IA", "GLACIER_IR"
	c.Storage.Tags = map[string]string{"b": "{stream}", "a": "{vhost}"}
	c.Storage.ContentDisposition = `attachment; filename="{basename}"`
	p, err := compile(c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	o := p.objects
	if o.StorageClassHLS != "STANDARD_IA" || o.StorageClassDVR != "GLACIER_IR" || len(o.Tags) != 2 || o.Tags[0].Name != "a" ||
		o.ContentDisposition.String() != c.Storage.ContentDisposition || o.ACL != "private" {
		t.Errorf("object options %+v", o)
	}
}
