package uploader

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Download copies the stored bytes of key into w, streaming (post-processing reads recordings
// of any size this way), and returns how many it copied.
func (u *Uploader) Download(ctx context.Context, key string, w io.Writer) (int64, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(u.Key(key))}
	u.enc.get(in)
	out, err := u.client.GetObject(ctx, in)
	if err != nil {
		return 0, classify(fmt.Errorf("download s3://%s/%s: %w", u.bucket, u.Key(key), err))
	}
	defer out.Body.Close()
	n, err := io.Copy(w, out.Body)
	if err != nil {
		return n, classify(fmt.Errorf("download s3://%s/%s: %w", u.bucket, u.Key(key), err))
	}
	return n, nil
}

// Delete removes key (a recording replaced by its MP4); deleting a missing key is not an error.
func (u *Uploader) Delete(ctx context.Context, key string) error {
	_, err := u.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(u.Key(key))})
	if err != nil {
		return classify(fmt.Errorf("delete s3://%s/%s: %w", u.bucket, u.Key(key), err))
	}
	return nil
}
