//go:build psk

package tests

// pskBuild tells that the tests run with -tags psk: the endpoint is built with TLS-PSK too.
const pskBuild = true
