package registry

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden parses every testdata/<case>.yaml and compares a summary of the
// registry, or the error text, with testdata/<case>.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Assert the cases exist, so that a moved testdata directory cannot pass.
	for _, want := range []string{"good", "legacy", "unknown_field", "bad_password", "bad_dialect", "duplicate", "alias_clash", "unknown_app", "invalid_yaml", "empty", "wrong_types", "anchors", "bad_anchor", "anchor_clash"} {
		if _, err := os.Stat(filepath.Join("testdata", want+".yaml")); err != nil {
			t.Errorf("missing golden case: %v", err)
		}
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := render(Parse(filepath.Base(file), data))
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./bridge/registry -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s: output differs from %s (run with -update to accept)\n--- got\n%s\n--- want\n%s", file, golden, got, want)
			}
		})
	}
}

// render summarises the result of Parse for a golden file.
func render(r *Registry, err error) string {
	if err != nil {
		return "error:\n" + err.Error() + "\n"
	}
	var b strings.Builder
	apps, devices := r.Counts()
	fmt.Fprintf(&b, "applications: %d, devices: %d\n", apps, devices)
	for _, a := range r.Applications() {
		fmt.Fprintf(&b, "application %s uid=%q disabled=%t dialect=%s trustAnchors=%d\n",
			a.Name, a.UID, a.Disabled, dialect(a.Dialect), len(a.TrustAnchors))
		for i, c := range a.Anchors {
			dn, err := DNString(c.RawSubject)
			if err != nil {
				dn = "error: " + err.Error()
			}
			found, _ := r.Application(dn)
			fmt.Fprintf(&b, "  anchor[%d] subject=%q alias=%t notAfter=%s\n", a.anchorOf[i], dn, found == a, stamp(c.NotAfter))
		}
		for _, d := range r.Devices(a.Name) {
			fmt.Fprintf(&b, "  device %s uid=%q disabled=%t aliases=%q gateways=%q dialect=%s effective=%s\n",
				d.Name, d.UID, d.Disabled, d.Aliases, d.Gateways, dialect(d.Dialect), dialect(ptr(d.EffectiveDialect(a))))
			for _, c := range d.Credentials {
				fmt.Fprintf(&b, "    %s\n", credential(c))
			}
		}
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }

func dialect(d *Dialect) string {
	switch {
	case d == nil:
		return "-"
	case d.DevicePrefix:
		return d.Type + "+devicePrefix"
	default:
		return d.Type
	}
}

func credential(c Credential) string {
	switch c.Kind {
	case CredentialPass:
		return "pass " + password(c.Password)
	case CredentialUser:
		return fmt.Sprintf("user %q unique=%t %s", c.Username, c.Unique, password(c.Password))
	case CredentialPSK:
		return fmt.Sprintf("psk key=%q notBefore=%s notAfter=%s", c.PSK, stamp(c.NotBefore), stamp(c.NotAfter))
	default:
		return fmt.Sprintf("unknown kind %q", c.Kind)
	}
}

func password(p Password) string {
	switch {
	case p.Bcrypt != "":
		return "bcrypt " + p.Bcrypt
	case p.SHA512 != "":
		return "sha512 " + p.SHA512
	default:
		return fmt.Sprintf("plain %q", p.Plain)
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}
