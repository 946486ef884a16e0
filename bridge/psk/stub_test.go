//go:build !(psk && cgo)

package psk

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestStubUnavailable(t *testing.T) {
	if Available() {
		t.Fatal("Available() = true in a build without -tags psk and cgo")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c, err := Server(a, func(string) ([]byte, error) { return []byte("k"), nil })
	if c != nil || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Server = %v, %v; want nil and an error wrapping errors.ErrUnsupported", c, err)
	}
	if !strings.Contains(err.Error(), "-tags psk") || !strings.Contains(err.Error(), "CGO_ENABLED=1") {
		t.Errorf("error %q does not say how to build with TLS-PSK", err)
	}
	if _, err := Client(a, "dev@app", []byte("k")); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Client error = %v; want errors.ErrUnsupported", err)
	}
}
