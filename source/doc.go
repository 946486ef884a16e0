// Package source turns device publishes into CloudEvents and delivers them to
// the Knative sink (K_SINK): the event-source half of the MQTT endpoint.
//
// The bridge hands every accepted PUBLISH, connection change and last will to
// a [Forwarder] as a [Publish]. The forwarder builds the event with an
// [EventBuilder] (attributes as in Drogue Cloud, SPEC §6 and
// reference/drogue-mqtt.md §5), sends it through a [Sender] and classifies the
// sink's answer:
//
//   - [Forwarder.Forward] is for QoS 1: it blocks until the sink answered,
//     retries transient failures, and returns nil only when the sink accepted
//     the event with a 2xx status, so the PUBACK can follow (SPEC §6).
//   - [Forwarder.ForwardAsync] is for QoS 0: it queues the event for a
//     bounded pool of workers and never blocks; a full queue drops the event
//     and counts it in [Stats].
//
// Errors are classified by sentinel, to be mapped to MQTT reason codes by the
// caller (the bridge owns that table; the codes below are the intended use):
//
//   - [ErrNotReady]: no sink configured (K_SINK unset, SPEC §3); 0x89.
//   - [ErrPayloadInvalid]: a JSON content type with a payload that is not
//     JSON, or a content type that is not a media type; 0x99.
//   - [ErrSinkUnavailable]: transport errors, timeouts, 404, 408, 409, 429 and
//     5xx after the bounded retries (Knative's retry rule); 0x89.
//   - [ErrSinkRejected]: any other non-2xx answer (400, 413, 422, …), which a
//     retry cannot fix; 0x80. [StatusCode] recovers the HTTP status.
//   - [ErrQueueFull]: the QoS 0 queue is full; 0x97.
//   - [ErrInvalidPublish]: the publish names no application or device, a bug
//     of the caller; 0x80.
//   - [ErrClosed]: the forwarder is shutting down; 0x89.
//
// Errors wrap both the sentinel and the sink's answer (a protocol.Result), so
// callers can test the class with errors.Is and log the status.
//
// [NewClient] builds the production [Sender]: what Knative's adapter client
// sends (binary content mode, K_CE_OVERRIDES, Kn-Namespace, K_CA_CERTS, the
// OIDC token), written by the sender itself on a pool of persistent HTTP/1.1
// connections, each used by one event at a time (BENCHMARKS.md explains why);
// [NewConsoleSender] prints events as JSON lines for --dev.
//
// This package imports no other package of this module.
package source
