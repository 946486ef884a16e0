//go:build psk && cgo && !race

package psk

const raceEnabled = false
