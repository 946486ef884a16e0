// Command kobase lets CI run `ko resolve` offline and look inside what ko built, with the
// go-containerregistry version ko itself uses (see .ci/ko-resolve). It is a module of its own,
// and a directory starting with a dot, so `go build ./...` in the repository leaves it out.
//
//	kobase base <oci-layout>
//	    Appends a synthetic, empty linux/amd64 base image to the OCI layout (ko's $KOCACHE/img)
//	    and prints its digest. ko takes a digest-pinned base image from there without pulling.
//	    The image has no files at all: fine for checking a build, useless for running it.
//	kobase inspect <oci-layout> <digest>
//	    Prints what the image <digest> in the layout ko wrote (--oci-layout-path) holds: its
//	    annotations, entrypoint and user, and for the entrypoint binary whether it is stripped
//	    (-s: no .symtab, -w: no DWARF) and the build settings Go recorded in it.
package main

import (
	"archive/tar"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "base":
		err = base(os.Args[2])
	case len(os.Args) == 4 && os.Args[1] == "inspect":
		err = inspect(os.Args[2], os.Args[3])
	default:
		err = errors.New("usage: kobase base <oci-layout> | kobase inspect <oci-layout> <digest>")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kobase:", err)
		os.Exit(1)
	}
}

func base(dir string) error {
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{Labels: map[string]string{
			"org.opencontainers.image.description": "synthetic empty base image for offline ko resolve checks; not runnable",
		}},
	})
	if err != nil {
		return err
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return err
		}
	}
	if err := p.AppendImage(img); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Println(d)
	return nil
}

func inspect(dir, digest string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return err
	}
	img, err := p.Image(h)
	if err != nil {
		return fmt.Errorf("image %s in %s: %w", digest, dir, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	fmt.Printf("digest: %s\nplatform: %s/%s\nlayers: %d\n", h, cfg.OS, cfg.Architecture, len(m.Layers))
	keys := make([]string, 0, len(m.Annotations))
	for k := range m.Annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("annotation: %s=%s\n", k, m.Annotations[k])
	}
	fmt.Printf("entrypoint: %s\nuser: %s\n", strings.Join(cfg.Config.Entrypoint, " "), cfg.Config.User)
	if len(cfg.Config.Entrypoint) == 0 {
		return errors.New("no entrypoint")
	}

	// The entrypoint binary, from the flattened filesystem.
	want := strings.TrimPrefix(path.Clean(cfg.Config.Entrypoint[0]), "/")
	bin, err := os.CreateTemp("", "kobase-bin-")
	if err != nil {
		return err
	}
	defer os.Remove(bin.Name())
	defer bin.Close()
	fs := mutate.Extract(img)
	defer fs.Close()
	tr := tar.NewReader(fs)
	found := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		if strings.TrimPrefix(path.Clean(hdr.Name), "/") == want && hdr.Typeflag == tar.TypeReg {
			if _, err := io.Copy(bin, tr); err != nil {
				return err
			}
			found = true
			fmt.Printf("binary: /%s %d bytes mode %o\n", want, hdr.Size, hdr.Mode)
			break
		}
	}
	if !found {
		return fmt.Errorf("entrypoint /%s is not in the image", want)
	}
	f, err := elf.Open(bin.Name())
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Printf("symtab: %s\n", presence(f.Section(".symtab") != nil))
	dwarf := false
	for _, s := range f.Sections {
		dwarf = dwarf || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_")
	}
	fmt.Printf("dwarf: %s\n", presence(dwarf))
	bi, err := buildinfo.ReadFile(bin.Name())
	if err != nil {
		return err
	}
	fmt.Printf("build: go %s\nbuild: path %s\n", bi.GoVersion, bi.Path)
	for _, s := range bi.Settings {
		fmt.Printf("build: %s=%s\n", s.Key, s.Value)
	}
	return nil
}

func presence(b bool) string {
	if b {
		return "present"
	}
	return "absent"
}
