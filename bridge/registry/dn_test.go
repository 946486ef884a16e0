package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// selfSigned returns a certificate created by crypto/x509 whose subject is
// subject, or rawSubject when that is set.
func selfSigned(t testing.TB, subject pkix.Name, rawSubject []byte) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               subject,
		RawSubject:            rawSubject,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rdns marshals an RDNSequence, sorting each SET as DER requires.
func rdns(t testing.TB, seq pkix.RDNSequence) []byte {
	t.Helper()
	b, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// atv is one attribute of a hand-built name.
type atv struct {
	oid   asn1.ObjectIdentifier
	tag   cbasn1.Tag
	value string
}

// rawName encodes RDNs exactly as given: the attributes of a SET in the
// given order (not sorted as DER wants) and with the given value tags.
func rawName(rdns ...[]atv) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, rdn := range rdns {
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				for _, a := range rdn {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(a.oid)
						b.AddASN1(a.tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(a.value)) })
					})
				}
			})
		}
	})
	return b.BytesOrPanic()
}

var (
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidUID   = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDC    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

func TestDNStringOfCertificates(t *testing.T) {
	tests := []struct {
		name    string
		subject pkix.Name
		raw     func(t testing.TB) []byte // overrides subject
		want    string
	}{
		{
			name:    "Drogue's example (drogue-mqtt.md §2)",
			subject: pkix.Name{Organization: []string{"Drogue IoT"}, OrganizationalUnit: []string{"Cloud"}, CommonName: "Device 1"},
			want:    "O=Drogue IoT, OU=Cloud, CN=Device 1",
		},
		{
			name: "every pkix.Name field, in encoded order",
			subject: pkix.Name{
				Country: []string{"DE"}, Province: []string{"Bayern"}, Locality: []string{"München"},
				StreetAddress: []string{"Hauptstraße 1"}, PostalCode: []string{"80331"},
				Organization: []string{"Example"}, OrganizationalUnit: []string{"IoT", "Fleet"},
				CommonName: "sensor", SerialNumber: "0042",
			},
			// Go puts several values of one field into one multi-valued RDN.
			want: "C=DE, ST=Bayern, L=München, streetAddress=Hauptstraße 1, postalCode=80331, O=Example, OU=IoT + OU=Fleet, CN=sensor, serialNumber=0042",
		},
		{
			name: "not reversed as RFC 4514 would",
			raw: func(t testing.TB) []byte {
				return rdns(t, pkix.RDNSequence{
					{{Type: oidCN, Value: "Device 1"}},
					{{Type: oidO, Value: "Drogue IoT"}},
				})
			},
			want: "CN=Device 1, O=Drogue IoT",
		},
		{
			name: "values are not escaped",
			subject: pkix.Name{
				Organization: []string{`Smith, Jones + "Partners"`},
				CommonName:   `#dev=1\ `,
			},
			want: `O=Smith, Jones + "Partners", CN=#dev=1\ `,
		},
		{
			name: "multi-valued RDN",
			raw: func(t testing.TB) []byte {
				return rdns(t, pkix.RDNSequence{
					{{Type: oidO, Value: "Drogue IoT"}},
					{{Type: oidCN, Value: "Device 1"}, {Type: oidUID, Value: "dev1"}},
				})
			},
			want: "O=Drogue IoT, CN=Device 1 + uid=dev1",
		},
		{
			name: "abbreviations and registry short names",
			raw: func(t testing.TB) []byte {
				return rdns(t, pkix.RDNSequence{
					{{Type: oidDC, Value: "org"}},
					{{Type: oidDC, Value: "example"}},
					{{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Ada"}},
					{{Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: "Lovelace"}},
					{{Type: asn1.ObjectIdentifier{2, 5, 4, 12}, Value: "Engineer"}},
					{{Type: asn1.ObjectIdentifier{2, 5, 4, 46}, Value: "q"}},
					{{Type: oidEmail, Value: "ada@example.org"}},
				})
			},
			want: "DC=org, DC=example, givenName=Ada, surname=Lovelace, title=Engineer, dnQualifier=q, Email=ada@example.org",
		},
		{
			name: "unknown OID",
			raw: func(t testing.TB) []byte {
				return rdns(t, pkix.RDNSequence{
					{{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1, 2}, Value: "tenant-7"}},
					{{Type: oidCN, Value: "Device 1"}},
				})
			},
			want: "OID(1.3.6.1.4.1.55555.1.2)=tenant-7, CN=Device 1",
		},
		{
			name: "BMPString bytes taken as UTF-8, as x509-parser 0.14 does",
			raw: func(t testing.TB) []byte {
				return rawName([]atv{{oidCN, cbasn1.Tag(30), "\x00A\x00B"}})
			},
			want: "CN=\x00A\x00B",
		},
		{
			name: "empty subject",
			raw:  func(t testing.TB) []byte { return rawName() },
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw []byte
			if tt.raw != nil {
				raw = tt.raw(t)
			}
			c := selfSigned(t, tt.subject, raw)
			got, err := DNString(c.RawSubject)
			if err != nil {
				t.Fatalf("DNString() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("DNString() = %q, want %q", got, tt.want)
			}
			if issuer, err := DNString(c.RawIssuer); err != nil || issuer != got {
				t.Errorf("DNString(RawIssuer) = %q, %v; want the subject's", issuer, err)
			}
		})
	}
}

// TestDNStringRaw covers names crypto/x509 would not create or parse.
func TestDNStringRaw(t *testing.T) {
	tests := []struct {
		name    string
		raw     []byte
		want    string
		wantErr string
	}{
		{
			name: "multi-valued RDN in encoded, not sorted, order",
			raw:  rawName([]atv{{oidUID, cbasn1.UTF8String, "dev1"}, {oidCN, cbasn1.PrintableString, "Device 1"}}),
			want: "uid=dev1 + CN=Device 1",
		},
		{
			name: "value that is not a string: uppercase hex of its content",
			raw:  rawName([]atv{{oidCN, cbasn1.OCTET_STRING, "\x01\xab"}}),
			want: "CN=01AB",
		},
		{
			name: "any string type",
			raw: rawName(
				[]atv{{oidCN, cbasn1.Tag(20), "t61"}},           // T61String
				[]atv{{oidCN, cbasn1.Tag(26), "visible"}},       // VisibleString
				[]atv{{oidCN, cbasn1.IA5String, "ia5"}},         // IA5String
				[]atv{{oidCN, cbasn1.Tag(18), "123"}},           // NumericString
				[]atv{{oidCN, cbasn1.Tag(27), "general"}},       // GeneralString
				[]atv{{oidCN, cbasn1.Tag(28), "\x00\x00\x00A"}}, // UniversalString is no string to x509-parser
			),
			want: "CN=t61, CN=visible, CN=ia5, CN=123, CN=general, CN=00000041",
		},
		{
			name:    "string value that is not UTF-8",
			raw:     rawName([]atv{{oidCN, cbasn1.Tag(20), "caf\xe9"}}),
			wantErr: "not valid UTF-8",
		},
		{
			name:    "empty RDN",
			raw:     rawName([]atv{}),
			wantErr: "RDN 1",
		},
		{
			name:    "not DER",
			raw:     []byte("CN=Device 1"),
			wantErr: "not a DER SEQUENCE",
		},
		{
			name:    "trailing bytes",
			raw:     append(rawName([]atv{{oidCN, cbasn1.UTF8String, "x"}}), 0),
			wantErr: "not a DER SEQUENCE",
		},
		{
			name:    "nil",
			wantErr: "not a DER SEQUENCE",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DNString(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DNString() = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DNString() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("DNString() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDNStringNotPkixString guards against using pkix.Name.String, which
// reverses the RDNs and escapes values.
func TestDNStringNotPkixString(t *testing.T) {
	c := selfSigned(t, pkix.Name{Organization: []string{"Drogue IoT"}, OrganizationalUnit: []string{"Cloud"}, CommonName: "Device, 1"}, nil)
	got, err := DNString(c.RawSubject)
	if err != nil {
		t.Fatal(err)
	}
	if pkixString := c.Subject.String(); got == pkixString {
		t.Errorf("DNString() = pkix.Name.String() = %q", got)
	}
	if want := "O=Drogue IoT, OU=Cloud, CN=Device, 1"; got != want {
		t.Errorf("DNString() = %q, want %q", got, want)
	}
}

// FuzzDNString checks that no input makes DNString panic and that a name
// it formats is valid UTF-8.
func FuzzDNString(f *testing.F) {
	f.Add(rawName([]atv{{oidCN, cbasn1.UTF8String, "Device 1"}}, []atv{{oidO, cbasn1.PrintableString, "x"}, {oidUID, cbasn1.IA5String, "y"}}))
	f.Add(rawName([]atv{{oidCN, cbasn1.OCTET_STRING, "\x00"}}))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := DNString(raw)
		if err == nil && !utf8.ValidString(s) {
			t.Fatalf("DNString() = %q, not valid UTF-8", s)
		}
	})
}
