package source

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// DefaultTokenFile is where a SinkBinding mounts the OIDC token for the sink when Knative's
// authentication-oidc feature is on (reference/knative.md §2.2, §4.7).
const DefaultTokenFile = "/oidc/token"

// tokenFile is a bearer token read from a file that may appear, change or vanish at any time:
// the file is looked at no more than once a second.
type tokenFile struct {
	path string

	mu      sync.Mutex // guards the fields below
	token   string
	stamp   string
	checked time.Time
}

// get returns the current token, "" when the file does not exist or is empty.
func (t *tokenFile) get(now time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.checked) < time.Second {
		return t.token
	}
	t.checked = now
	fi, err := os.Stat(t.path) // follows the symlinks of a mounted Secret
	if err != nil {
		t.token, t.stamp = "", ""
		return ""
	}
	stamp := fmt.Sprintf("%d/%d", fi.ModTime().UnixNano(), fi.Size())
	if stamp == t.stamp {
		return t.token
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return t.token // mid-update: keep the previous token
	}
	t.token, t.stamp = strings.TrimSpace(string(b)), stamp
	return t.token
}
