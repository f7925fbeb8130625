package s3test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/uploader"
)

// MinIOKMSKey is the name of the key of MinIO's built-in KMS that MinIO starts with.
const MinIOKMSKey = "srs-offload-test-key"

// MinIO starts a MinIO server (single drive) in a temporary folder, with its built-in KMS
// (MINIO_KMS_SECRET_KEY: one key, MinIOKMSKey, of 32 random bytes) so that SSE-S3 and SSE-KMS
// work, and creates a bucket. It serves TLS on loopback with a certificate made here (MinIO
// refuses SSE-C over plain HTTP); Server.CABundle holds it, and Server.Config trusts it. It is
// killed when the test ends.
func MinIO(t testing.TB) *Server {
	t.Helper()
	if !haveTool(t, "minio") {
		// Its first build takes several minutes, beyond CI's budget: `make test-minio` builds it
		// once into the tool cache, and from then on `make test` runs these tests too.
		t.Skip("MinIO is not in the tool cache: `make test-minio` builds it and runs the MinIO tests")
	}
	bin := toolBinary(t, "minio")
	dir := t.TempDir()
	data, certs := filepath.Join(dir, "data"), filepath.Join(dir, "certs")
	os.MkdirAll(data, 0o755)
	os.MkdirAll(certs, 0o755)
	caPEM := selfSigned(t, certs)

	addr := "127.0.0.1:" + strconv.Itoa(loopback.FreePort(t))
	console := "127.0.0.1:" + strconv.Itoa(loopback.FreePort(t))
	s := &Server{Name: "minio", Endpoint: "https://" + addr, Bucket: "test",
		AccessKey: "minioadmin-test", SecretKey: "minioadmin-secret", CABundle: caPEM, KMSKey: MinIOKMSKey}
	kmsKey := make([]byte, 32)
	rand.Read(kmsKey)

	cmd := exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", console,
		"--certs-dir", certs, data)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_KMS_SECRET_KEY="+MinIOKMSKey+":"+base64.StdEncoding.EncodeToString(kmsKey),
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "HOME="+dir)
	logPath := filepath.Join(dir, "minio.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start minio: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })

	// MinIO listens before it serves: wait for its readiness probe.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := hc.Get(s.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("minio on %s exited at start:\n%s", addr, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("minio on %s not ready after 60s (last: %v):\n%s", addr, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Ready can come before the S3 API is initialized (503 XMinioServerNotInitialized).
	c := s.client(t)
	for {
		_, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)})
		if err == nil {
			return s
		}
		if !strings.Contains(err.Error(), "XMinioServerNotInitialized") || time.Now().After(deadline) {
			t.Fatalf("minio create bucket: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// client is a plain S3 client for the server, for setting it up.
func (s *Server) client(t testing.TB) *s3.Client {
	t.Helper()
	u, err := uploader.New(context.Background(), s.Config())
	if err != nil {
		t.Fatal(err)
	}
	return u.Client()
}

// DefaultKMS sets the bucket's default encryption to SSE-KMS with the server's KMS key, as a
// company account often has it: objects uploaded without any encryption header are SSE-KMS.
func (s *Server) DefaultKMS(t testing.TB) {
	t.Helper()
	_, err := s.client(t).PutBucketEncryption(context.Background(), &s3.PutBucketEncryptionInput{
		Bucket: aws.String(s.Bucket),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
			Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{
				SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(s.KMSKey),
			}}},
		},
	})
	if err != nil {
		t.Fatalf("%s: put bucket encryption: %v", s.Name, err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key where MinIO looks for them
// (public.crt, private.key) and returns the certificate (PEM).
func selfSigned(t testing.TB, dir string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "srs-offload test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "public.crt"), crt, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "private.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return crt
}
