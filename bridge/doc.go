// Package bridge is the MQTT side of the endpoint and the only package that speaks MQTT: it runs
// the mochi-mqtt server, authenticates devices against the registry, keeps one connection per
// device, parses publish topics by dialect and hands each publish to the source package as an
// event, acknowledging QoS 1 only once the sink accepted it. See README.md beside this file for
// the connection lifecycle and the ordered acknowledgement queue.
package bridge
