package uploader

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/srs-offload/srs-offload/storage"
)

// List returns every object whose key (without the storage prefix) starts with prefix, in key
// order, for the inventory (`srs-offload ls`); it is never on the upload path.
func (u *Uploader) List(ctx context.Context, prefix string) ([]storage.Listed, error) {
	var out []storage.Listed
	pages := s3.NewListObjectsV2Paginator(u.client, &s3.ListObjectsV2Input{Bucket: aws.String(u.bucket), Prefix: aws.String(u.Key(prefix))})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return out, classify(fmt.Errorf("list s3://%s/%s: %w", u.bucket, u.Key(prefix), err))
		}
		for _, o := range page.Contents {
			out = append(out, storage.Listed{Key: strings.TrimPrefix(aws.ToString(o.Key), u.prefix), Size: aws.ToInt64(o.Size),
				Modified: aws.ToTime(o.LastModified)})
		}
	}
	return out, nil
}
