package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a certificate authority made for one test, with a server certificate for 127.0.0.1 and
// localhost and a client certificate, as PEM files in a temporary folder.
type PKI struct {
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string
	pool                                                 *x509.CertPool
	client                                               tls.Certificate
}

// NewPKI generates the CA and both certificates (ECDSA P-256, valid for a day).
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	p := &PKI{
		CAFile: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "srs-offload test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	writePEM(t, p.CAFile, "CERTIFICATE", caDER)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(caCert)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, certFile, keyFile string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "EC PRIVATE KEY", kb)
	}
	leaf(2, "redis-server", x509.ExtKeyUsageServerAuth, p.ServerCert, p.ServerKey)
	leaf(3, "srs-offload", x509.ExtKeyUsageClientAuth, p.ClientCert, p.ClientKey)
	p.client, err = tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writePEM(t testing.TB, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ServerArgs are redis-server's TLS arguments: its certificate, and client certificates required
// (signed by the CA).
func (p *PKI) ServerArgs() []string {
	return []string{"--tls-cert-file", p.ServerCert, "--tls-key-file", p.ServerKey, "--tls-ca-cert-file", p.CAFile,
		"--tls-auth-clients", "yes"}
}

// NodeArgs are ServerArgs for a server that also dials servers of the same PKI with TLS: a replica
// its master, a sentinel the set (tls-replication yes), a Cluster node the bus (with
// "--tls-cluster", "yes"). It presents the client certificate (tls-client-cert-file), since the
// server certificate is for server authentication only and its peers require client certificates.
func (p *PKI) NodeArgs() []string {
	return append(p.ServerArgs(), "--tls-client-cert-file", p.ClientCert, "--tls-client-key-file", p.ClientKey,
		"--tls-replication", "yes")
}

// CLIArgs are redis-cli's TLS arguments.
func (p *PKI) CLIArgs() []string {
	return []string{"--tls", "--cacert", p.CAFile, "--cert", p.ClientCert, "--key", p.ClientKey}
}

// ClientTLS is a client config trusting the CA and presenting the client certificate.
func (p *PKI) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.client}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
