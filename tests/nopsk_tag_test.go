//go:build !psk

package tests

const pskBuild = false
