// Package auth authenticates MQTT clients against the device registry,
// following Drogue's credential matrix (SPEC §5, drogue-mqtt.md §1 and §2).
//
// Authenticate picks the first row of the matrix that fits what the client
// presented: a username "<device>@<app>" with a password; a plain username
// and password with the client id "<device>@<app>"; a TLS client
// certificate and no username or password; or a TLS-PSK identity
// "<device>@<app>" and no username or password. The password rows need the
// connection to carry neither a certificate nor a PSK identity.
//
// A client certificate names its application by its issuer: the application
// one of whose trust anchors issued it (or an intermediate presented with
// it). The chain is verified against that application's anchors only, so a
// CA of one application never vouches for devices of another; the device is
// the one named, by name or alias, after the certificate's subject DN in
// Drogue's format (registry.DNString), else after its common name.
//
// TLS-PSK keys are chosen by PSKKey, which the PSK listener calls inside the
// handshake; a verified identity then only needs to resolve at CONNECT.
//
// Slow password hashes (bcrypt, SHA-512 crypt) are bounded by a semaphore,
// and successful verifications are remembered for a while, keyed by an HMAC
// over the stored hash and the password, so that a reconnect storm does not
// burn the CPU; the password itself is never stored. Certificate chains are
// verified on every connection (tens of microseconds each, no cache).
package auth
