package registry

import (
	"crypto/x509"
	"time"
)

// Dialect names accepted in spec.mqtt.dialect.type (drogue-mqtt.md §3).
const (
	DialectDrogueV1   = "drogue/v1"
	DialectPlainTopic = "plainTopic"
)

// Application is a registry application (SPEC §4).
type Application struct {
	Name     string // metadata.name
	UID      string // metadata.uid, empty when not given
	Disabled bool   // spec.core.disabled
	// Dialect is spec.mqtt.dialect, nil when spec.mqtt is absent.
	Dialect *Dialect
	// TrustAnchors holds spec.trustAnchors.anchors[].certificate as given
	// (base64 of PEM text as Drogue stores it, or PEM text).
	TrustAnchors []string
	// Anchors holds the CA certificates of TrustAnchors, parsed, in order;
	// one anchor may hold several. Client certificates issued under them
	// authenticate devices of this application (SPEC §5).
	Anchors []*x509.Certificate

	anchorOf []int // index in spec.trustAnchors.anchors of each Anchors entry
}

// Device is a registry device (SPEC §4).
type Device struct {
	Name        string       // metadata.name
	Application string       // metadata.application
	UID         string       // metadata.uid, empty when not given
	Disabled    bool         // spec.core.disabled
	Aliases     []string     // spec.alias: further names the device is found by
	Credentials []Credential // spec.authentication, else the legacy spec.credentials
	// Gateways lists spec.gatewaySelector.matchNames: the devices allowed to
	// act for this one.
	Gateways []string
	// Dialect is non-nil iff the device spec has an mqtt key at all; even
	// "mqtt: {}" yields drogue/v1 and hides the application's dialect
	// (drogue-mqtt.md §3).
	Dialect *Dialect
}

// Dialect is an MQTT topic dialect (drogue-mqtt.md §3).
type Dialect struct {
	Type         string // DialectDrogueV1 or DialectPlainTopic
	DevicePrefix bool   // plainTopic only: the first topic segment names the device
}

// CredentialKind tells which member of a Credential is set.
type CredentialKind string

// Credential kinds of spec.authentication.credentials (drogue-mqtt.md §2).
const (
	CredentialPass CredentialKind = "pass"
	CredentialUser CredentialKind = "user"
	CredentialPSK  CredentialKind = "psk"
)

// Credential is one entry of a device's credentials.
type Credential struct {
	Kind     CredentialKind
	Password Password // pass and user
	Username string   // user
	Unique   bool     // user: the username is also an alias of the device
	PSK      []byte   // psk: the key, decoded from base64
	// NotBefore and NotAfter bound a psk key's validity; zero means unbounded.
	NotBefore, NotAfter time.Time
}

// Password is a stored password; exactly one field is set, and Parse
// rejects empty passwords.
type Password struct {
	Plain  string // compared as is
	Bcrypt string // a $2a$, $2b$ or $2y$ bcrypt hash
	SHA512 string // a $6$ SHA-512 crypt hash
}

// EffectiveDialect returns the dialect a connection of d uses: the device's
// when its spec has an mqtt key, else the application's, else drogue/v1
// (drogue-mqtt.md §3).
func (d *Device) EffectiveDialect(app *Application) Dialect {
	switch {
	case d != nil && d.Dialect != nil:
		return *d.Dialect
	case app != nil && app.Dialect != nil:
		return *app.Dialect
	default:
		return Dialect{Type: DialectDrogueV1}
	}
}
