package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRegistryYAML checks that no input makes Parse panic, that every
// problem names the file, and that a parsed registry finds each application
// and device by each of its keys.
func FuzzRegistryYAML(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, "../../cmd/mqtt-endpoint/dev-registry.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, seed := range []string{
		"",
		"---\n...\n---",
		"kind: Device\nmetadata: {name: &a x, application: *a}\n",
		"a: &a [*a]\n",
		"kind: Application\nmetadata: {name: a}\n--- {kind: Device, metadata: {name: d, application: a}, spec: {alias: [d]}}\n",
		"{kind: Application, metadata: {name: \"\\u0000\"}}",
		"kind: Application\nmetadata:\n  name: a\n  name: b\n",
		"? [a]\n: b\n",
		"!!binary aGVsbG8=",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse("fuzz.yaml", data)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, "fuzz.yaml: document ") || strings.HasPrefix(line, "... and ") {
					continue
				}
				t.Fatalf("problem line %q does not name the file; error:\n%v", line, err)
			}
			return
		}
		apps, devices := r.Counts()
		if len(r.Applications()) != apps {
			t.Fatalf("Counts() apps = %d, Applications() has %d", apps, len(r.Applications()))
		}
		n := 0
		for _, a := range r.Applications() {
			for _, k := range appKeys(a) {
				if got, ok := r.Application(k.key); !ok || got != a {
					t.Fatalf("application %q not found by %s %q", a.Name, k.role, k.key)
				}
			}
			for _, c := range a.Anchors {
				if got, ok := r.ApplicationForIssuer(c); !ok || got != a {
					t.Fatalf("application %q not found by the issuer of its anchor %q", a.Name, c.Subject)
				}
			}
			for _, d := range r.Devices(a.Name) {
				n++
				for _, k := range deviceKeys(d) {
					if got, ok := r.Device(a.Name, k.key); !ok || got != d {
						t.Fatalf("device %s/%s not found by %s %q", a.Name, d.Name, k.role, k.key)
					}
				}
			}
		}
		if n != devices {
			t.Fatalf("Counts() devices = %d, Devices() lists %d", devices, n)
		}
	})
}
