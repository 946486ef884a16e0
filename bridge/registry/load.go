package registry

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Load reads the registry at path: a YAML file, or a directory whose *.yaml
// and *.yml files are read in name order (SPEC §3 REGISTRY_PATH).
//
// A directory is not read recursively. Names starting with a dot are
// skipped, which leaves out the "..data" and timestamped directories of a
// Kubernetes volume; symlinks to regular files, which is what the mounted
// keys are, are followed.
func Load(path string) (*Registry, error) {
	srcs, err := readSources(path)
	if err != nil {
		return nil, err
	}
	return parseAt(path, srcs)
}

// parseAt parses srcs read from path, naming path in the error.
func parseAt(path string, srcs []source) (*Registry, error) {
	r, err := parseSources(srcs)
	if err != nil {
		return nil, fmt.Errorf("load registry %s: %w", path, err)
	}
	return r, nil
}

// readSources reads the registry files at path.
func readSources(path string) ([]source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load registry %s: %w", path, err)
	}
	if !fi.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("load registry %s: %w", path, err)
		}
		return []source{{name: path, data: data}}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("load registry %s: %w", path, err)
	}
	var srcs []source
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		file := filepath.Join(path, name)
		fi, err := os.Stat(file) // follows symlinks
		if err != nil {
			return nil, fmt.Errorf("load registry %s: %w", path, err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("load registry %s: %w", path, err)
		}
		srcs = append(srcs, source{name: file, data: data})
	}
	return srcs, nil
}

// hashSources returns a digest of the names and contents of srcs, to tell
// whether anything changed since the last load.
func hashSources(srcs []source) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, s := range srcs {
		for _, b := range [][]byte{[]byte(s.name), s.data} {
			binary.BigEndian.PutUint64(n[:], uint64(len(b)))
			h.Write(n[:])
			h.Write(b)
		}
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
