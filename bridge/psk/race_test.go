//go:build psk && cgo && race

package psk

// raceEnabled: the race detector's shadow memory makes RSS grow faster.
const raceEnabled = true
