package source

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	tf := &tokenFile{path: path}
	now := time.Now()
	steps := []struct {
		name  string
		write string // "" removes the file
		after time.Duration
		want  string
	}{
		{"no file", "", 0, ""},
		{"file appears", "tok-1\n", 2 * time.Second, "tok-1"},
		{"cached within a second", "tok-2-longer", 100 * time.Millisecond, "tok-1"},
		{"renewed", "tok-2-longer", 2 * time.Second, "tok-2-longer"},
		{"file removed", "", 2 * time.Second, ""},
	}
	for _, st := range steps {
		if st.write == "" {
			_ = os.Remove(path)
		} else if err := os.WriteFile(path, []byte(st.write), 0o600); err != nil {
			t.Fatal(err)
		}
		now = now.Add(st.after)
		if got := tf.get(now); got != st.want {
			t.Fatalf("%s: token %q, want %q", st.name, got, st.want)
		}
	}
}
