package testbed

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/s3stats"
)

// Redis is a redis-server started for the run, configured as README asks for production:
// appendonly yes (appendfsync everysec) and noeviction, so an enqueue is as durable as in
// production.
type Redis struct {
	Addr    string
	Version string
	P       *Proc
	Client  *redis.Client
}

// StartRedis starts redis-server (from PATH) with its files in dir; tool names the make target
// that installs it, for the error when it is missing.
func StartRedis(dir, tool string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found: run `%s` (scripts/tools.sh bench installs Debian's redis-server)", tool)
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out, _ := exec.Command(bin, "--version").Output()
	s := &Redis{Addr: addr, Version: FirstLine(out)}
	s.P, err = Start("redis-server", filepath.Join(dir, "redis.log"), os.Environ(), bin,
		"--bind", "127.0.0.1", "--port", port, "--dir", dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
		"--daemonize", "no", "--protected-mode", "yes", "--maxmemory-policy", "noeviction", "--loglevel", "warning")
	if err != nil {
		return nil, err
	}
	s.Client = redis.NewClient(&redis.Options{Addr: s.Addr, ReadTimeout: 30 * time.Second})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := s.Client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		if !s.P.Running() || time.Now().After(deadline) {
			return nil, fmt.Errorf("redis-server on %s did not answer PING (%v):\n%s", s.Addr, err, s.P.LogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Flush empties Redis between runs (it is the harness's own server).
func (s *Redis) Flush() error {
	return s.Client.FlushAll(context.Background()).Err()
}

// S3 is a versitygw gateway (posix backend) started for the run, counting its requests per
// bucket and action through StatsD.
type S3 struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	Version   string
	DataDir   string // the posix backend's folder: one folder per bucket, objects under their keys
	P         *Proc
	Client    *s3.Client
	Stats     *s3stats.Counter
}

// versityBinary finds versitygw in the tool cache that scripts/tools.sh fills.
func versityBinary(tool string) (string, error) {
	dir := os.Getenv("SRS_OFFLOAD_TOOLS")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(cache, "srs-offload", "bin")
	}
	p := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw not found in %s: run `%s` (scripts/tools.sh builds it)", dir, tool)
	}
	return p, nil
}

// StartVersity starts versitygw with its data and sidecar metadata in dir. name is the harness's
// (bench, scale): its StatsD service name and the stem of the keys. tool is as for StartRedis.
func StartVersity(dir, name, tool string) (*S3, error) {
	bin, err := versityBinary(tool)
	if err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	data, meta := filepath.Join(dir, "data"), filepath.Join(dir, "meta")
	for _, d := range []string{data, meta} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	s := &S3{Endpoint: "http://" + addr, AccessKey: name + "access", SecretKey: name + "secret1234", DataDir: data}
	// tools.sh installs it as versitygw-<version> behind a versitygw link; the binary itself says
	// only "git" when built with go install.
	s.Version = "versitygw"
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		if v, ok := strings.CutPrefix(filepath.Base(real), "versitygw-"); ok {
			s.Version += " " + v
		}
	}
	if s.Stats, err = s3stats.Start(); err != nil {
		return nil, err
	}
	// --keep-alive: versitygw closes every connection after one request unless told otherwise,
	// which S3 does not do. --quiet: no line per request on stdout. StatsD: request counts per
	// bucket and action.
	s.P, err = Start("versitygw", filepath.Join(dir, "versitygw.log"), os.Environ(), bin,
		"--access", s.AccessKey, "--secret", s.SecretKey, "--port", addr, "--keep-alive", "--quiet",
		"--metrics-statsd-servers", s.Stats.Addr, "--metrics-service-name", name,
		"posix", "--sidecar", meta, data)
	if err != nil {
		return nil, err
	}
	if err := s.P.WaitListen(addr, 15*time.Second); err != nil {
		return nil, err
	}
	s.Client, err = NewS3Client(s.Endpoint, s.AccessKey, s.SecretKey, 64)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// NewS3Client is a plain aws-sdk-go-v2 client set up as srs-offload's uploader sets up its own
// (path-style, checksums only when required, a connection pool of conns), so a raw-PUT baseline
// pays for the same SDK work per request.
func NewS3Client(endpoint, ak, sk string, conns int) (*s3.Client, error) {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = conns
		t.MaxIdleConnsPerHost = conns
	})
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithRegion("us-east-1"),
		awsconfig.WithHTTPClient(httpClient),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, "")),
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}

// CreateBucket creates a bucket.
func (s *S3) CreateBucket(name string) error {
	_, err := s.Client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// Object is what a listing says of one key.
type Object struct {
	Size int64
	ETag string // lower case, without quotes
}

// List returns every object in the bucket.
func (s *S3) List(bucket string) (map[string]Object, error) {
	out := map[string]Object{}
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = Object{Size: aws.ToInt64(o.Size), ETag: strings.ToLower(strings.Trim(aws.ToString(o.ETag), `"`))}
		}
	}
	return out, nil
}

// DropBucket deletes every object and the bucket, so that the next run's writes do not compete
// with the last run's data for the page cache and the disk.
func (s *S3) DropBucket(bucket string) error {
	ctx := context.Background()
	objs, err := s.List(bucket)
	if err != nil {
		return err
	}
	var batch []s3types.ObjectIdentifier
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := s.Client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: batch, Quiet: aws.Bool(true)}})
		batch = batch[:0]
		return err
	}
	for k := range objs {
		batch = append(batch, s3types.ObjectIdentifier{Key: aws.String(k)})
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return fmt.Errorf("delete objects in %s: %w", bucket, err)
			}
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("delete objects in %s: %w", bucket, err)
	}
	if _, err := s.Client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		// Multipart leftovers or folders versitygw keeps: the data goes with the folder.
		os.RemoveAll(filepath.Join(s.DataDir, bucket))
	}
	return nil
}
