package storage

import "context"

type sentKey struct{}

// WithSent returns ctx carrying f, which the Store calls with the number of bytes of the local
// file each time it hands them to the network for an upload made with ctx (a part sent again
// after an error is counted again). Reading the file for its digests is not counted.
func WithSent(ctx context.Context, f func(n int64)) context.Context {
	return context.WithValue(ctx, sentKey{}, f)
}

// SentFrom returns the function WithSent put in ctx, or nil.
func SentFrom(ctx context.Context) func(n int64) {
	f, _ := ctx.Value(sentKey{}).(func(int64))
	return f
}
