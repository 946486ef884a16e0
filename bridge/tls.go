package bridge

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// CertificateFiles serves the server certificate from a PEM certificate and key file pair and
// re-reads them when they change (cert-manager rotates the Secret they are mounted from).
type CertificateFiles struct {
	certFile, keyFile string

	mu      sync.Mutex // guards the fields below
	cert    *tls.Certificate
	stamp   string    // size and modification time of both files at the last load
	checked time.Time // last look at the files; they are looked at no more than once a second
}

// LoadCertificateFiles reads a certificate and key; it fails when they do not load.
func LoadCertificateFiles(certFile, keyFile string) (*CertificateFiles, error) {
	c := &CertificateFiles{certFile: certFile, keyFile: keyFile}
	if _, err := c.get(time.Now()); err != nil {
		return nil, err
	}
	return c, nil
}

// GetCertificate is a tls.Config.GetCertificate: the current certificate, reloaded when the files
// changed. A broken new pair keeps the previous certificate.
func (c *CertificateFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.get(time.Now())
}

func (c *CertificateFiles) get(now time.Time) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && now.Sub(c.checked) < time.Second {
		return c.cert, nil
	}
	c.checked = now
	stamp, err := fileStamp(c.certFile, c.keyFile)
	if err == nil && stamp == c.stamp {
		return c.cert, nil
	}
	cert, lerr := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if lerr != nil {
		if c.cert != nil {
			return c.cert, nil // mid-rotation: one file is new, the other not yet
		}
		return nil, fmt.Errorf("load certificate %s and key %s: %w", c.certFile, c.keyFile, lerr)
	}
	c.cert, c.stamp = &cert, stamp
	return c.cert, nil
}

func fileStamp(paths ...string) (string, error) {
	var s string
	for _, p := range paths {
		fi, err := os.Stat(p) // follows the symlinks of a mounted Secret
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

// serverTLS is the TLS configuration of the MQTTS and WSS listeners: TLS 1.2 or newer, and a
// client certificate requested but not required, since it is verified at CONNECT against the
// trust anchors of the application that issued it (SPEC §5).
func serverTLS(certs *CertificateFiles, requestClientCert bool) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: certs.GetCertificate,
	}
	if requestClientCert {
		cfg.ClientAuth = tls.RequestClientCert
	}
	return cfg
}
