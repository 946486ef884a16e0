// Package auth authenticates MQTT clients against the device registry,
// following Drogue's credential matrix (SPEC §5, drogue-mqtt.md §1 and §2).
//
// Authenticate picks the first row of the matrix that fits what the client
// presented: a username "<device>@<app>" with a password, or a plain username
// and password with the client id "<device>@<app>". TLS client certificates
// and TLS-PSK identities are further rows that later join the same switch.
//
// Slow password hashes (bcrypt, SHA-512 crypt) are bounded by a semaphore,
// and successful verifications are remembered for a while, keyed by an HMAC
// over the stored hash and the password, so that a reconnect storm does not
// burn the CPU; the password itself is never stored.
package auth
