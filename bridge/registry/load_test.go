package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes data to dir/name, creating parent directories. It
// writes a temporary dotfile and renames it, so that a watcher never reads a
// half-written file.
func writeFile(t testing.TB, dir, name, data string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	appYAML    = "kind: Application\nmetadata: {name: app1}\n"
	brokenYAML = "kind: Device\nmetadata: {name: [\n"
)

// deviceYAML returns a device of app1.
func deviceYAML(name string) string {
	return "kind: Device\nmetadata: {name: " + name + ", application: app1}\n"
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	writeFile(t, dir, "a.yaml", appYAML)
	writeFile(t, dir, "b.yml", deviceYAML("d1"))
	writeFile(t, dir, "notes.txt", brokenYAML)
	writeFile(t, dir, ".hidden.yaml", brokenYAML)
	writeFile(t, dir, "..2026_01_01/broken.yaml", brokenYAML)
	writeFile(t, dir, "sub/broken.yaml", brokenYAML)
	writeFile(t, dir, "sub.yaml/broken.yaml", brokenYAML) // a directory named like a file
	real := writeFile(t, outside, "real.yaml", deviceYAML("d2"))
	if err := os.Symlink(real, filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}

	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if apps, devices := r.Counts(); apps != 1 || devices != 2 {
		t.Fatalf("Counts() = %d, %d; want 1, 2", apps, devices)
	}
	for _, name := range []string{"d1", "d2"} {
		if _, ok := r.Device("app1", name); !ok {
			t.Errorf("device %s not loaded", name)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path to load
		want  []string                              // substrings of the error
	}{
		{
			name:  "missing path",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "nope.yaml") },
			want:  []string{"load registry", "nope.yaml", "no such file"},
		},
		{
			name: "dangling symlink in a directory",
			setup: func(t *testing.T, dir string) string {
				if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "x.yaml")); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: []string{"load registry", "x.yaml"},
		},
		{
			name: "duplicate across files names both",
			setup: func(t *testing.T, dir string) string {
				writeFile(t, dir, "a.yaml", appYAML+"---\n"+deviceYAML("d1"))
				writeFile(t, dir, "b.yaml", deviceYAML("d1"))
				return dir
			},
			want: []string{
				"load registry " + "DIR",
				"b.yaml: document 1 (Device app1/d1): duplicate device name \"d1\", first defined at DIR/a.yaml: document 2 (Device app1/d1)",
			},
		},
		{
			name: "device in another file than its application is fine, missing one is not",
			setup: func(t *testing.T, dir string) string {
				writeFile(t, dir, "a.yaml", deviceYAML("d1"))
				return filepath.Join(dir, "a.yaml")
			},
			want: []string{"a.yaml: document 1 (Device app1/d1): application \"app1\" not found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Load(tt.setup(t, dir))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if w = strings.ReplaceAll(w, "DIR", dir); !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "registry.yaml", appYAML+"---\n"+deviceYAML("d1"))
	writeFile(t, dir, "other.yaml", brokenYAML) // a file path reads only that file
	r, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Device("app1", "d1"); !ok {
		t.Error("device d1 not loaded")
	}
}

func TestHashSources(t *testing.T) {
	base := []source{{name: "a", data: []byte("bc")}}
	tests := []struct {
		name string
		srcs []source
		same bool
	}{
		{name: "identical", srcs: []source{{name: "a", data: []byte("bc")}}, same: true},
		{name: "content", srcs: []source{{name: "a", data: []byte("bd")}}},
		{name: "name", srcs: []source{{name: "b", data: []byte("bc")}}},
		{name: "boundary", srcs: []source{{name: "ab", data: []byte("c")}}},
		{name: "split", srcs: []source{{name: "a", data: []byte("b")}, {name: "c"}}},
		{name: "none", srcs: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hashSources(tt.srcs) == hashSources(base); got != tt.same {
				t.Errorf("same hash = %t, want %t", got, tt.same)
			}
		})
	}
}
