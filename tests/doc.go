// Package tests holds the end-to-end tests: they build the real mqtt-endpoint binary, start it
// on loopback ports with a registry written by the test, connect real MQTT clients (paho v5,
// paho v3.1.1, mosquitto_pub) and receive its events on a real CloudEvents HTTP receiver.
package tests
