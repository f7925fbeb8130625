package storage

import "context"

// Names are the names of the stream a stored file belongs to. They travel with the upload's
// context (WithNames), so that the object options' templates (tags, metadata, the
// Content-Disposition of recordings) can use them without every Store method taking them.
type Names struct{ Vhost, App, Stream string }

type namesKey struct{}

// WithNames returns ctx carrying the stream's names for the uploads made with it.
func WithNames(ctx context.Context, n Names) context.Context {
	return context.WithValue(ctx, namesKey{}, n)
}

// NamesFrom returns the names WithNames put in ctx, or none.
func NamesFrom(ctx context.Context) Names {
	n, _ := ctx.Value(namesKey{}).(Names)
	return n
}
