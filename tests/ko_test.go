package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"

	"gopkg.in/yaml.v3"
)

// The ko configuration (https://ko.build/configuration). ko reads only .ko.yaml in the working
// directory (or the file KO_CONFIG_PATH names), and it ignores keys it does not know, so a
// misspelt key or a build entry that does not match the import path in config/ silently builds
// the image without its flags. .ci/ko-resolve proves on the built image that ko used .ko.yaml;
// this test checks the files themselves.

// koConfig is what ko v0.18 reads from a config file (pkg/commands/options/build.go LoadConfig,
// pkg/build/config.go Config).
type koConfig struct {
	DefaultBaseImage   string            `yaml:"defaultBaseImage"`
	BaseImageOverrides map[string]string `yaml:"baseImageOverrides"`
	DefaultPlatforms   koStrings         `yaml:"defaultPlatforms"`
	DefaultEnv         koStrings         `yaml:"defaultEnv"`
	DefaultFlags       koStrings         `yaml:"defaultFlags"`
	DefaultLdflags     koStrings         `yaml:"defaultLdflags"`
	Builds             []struct {
		ID                string    `yaml:"id"`
		Dir               string    `yaml:"dir"`
		Main              string    `yaml:"main"`
		Env               koStrings `yaml:"env"`
		Flags             koStrings `yaml:"flags"`
		Ldflags           koStrings `yaml:"ldflags"`
		LinuxCapabilities koStrings `yaml:"linux_capabilities"`
	} `yaml:"builds"`
}

// koStrings is a string or a list of strings, as ko accepts for flags and ldflags.
type koStrings []string

func (s *koStrings) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = koStrings{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// koDistrolessStaticNonroot is the base image family the issue asks for.
var koDistrolessStaticNonroot = regexp.MustCompile(`^gcr\.io/distroless/static(-debian[0-9]+)?:nonroot(@sha256:[0-9a-f]{64})?$`)

// TestKoConfig checks .ko.yaml → ko.yaml, both ko configs strictly, their templates, and that
// every ko:// reference of config/ has a build entry in ko.yaml.
func TestKoConfig(t *testing.T) {
	// ko reads .ko.yaml, never ko.yaml: the symlink is what makes ko.yaml count.
	fi, err := os.Lstat("../.ko.yaml")
	if err != nil {
		t.Fatalf(".ko.yaml: %v (ko reads only .ko.yaml; ko.yaml alone is ignored)", err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf(".ko.yaml is not a symlink to ko.yaml: the two would drift apart")
	} else if target, err := os.Readlink("../.ko.yaml"); err != nil || target != "ko.yaml" {
		t.Errorf(".ko.yaml points to %q (%v), want ko.yaml", target, err)
	}
	// A clone must get the symlink too: git stores it as mode 120000.
	if out, err := exec.Command("git", "-C", "..", "ls-files", "-s", ".ko.yaml").Output(); err == nil {
		switch mode, _, _ := strings.Cut(string(out), " "); mode {
		case "120000":
		case "":
			t.Logf(".ko.yaml is not committed yet; commit it as a symlink")
		default:
			t.Errorf(".ko.yaml is in git with mode %s, want 120000 (a symlink)", mode)
		}
	}

	docs, problems := mfReadManifests(os.DirFS(mfConfigDir))
	if len(problems) > 0 {
		t.Fatalf("config/: %s", strings.Join(problems, "\n"))
	}
	var refs []string
	for _, d := range docs {
		refs = append(refs, d.koRef...)
	}
	if len(refs) == 0 {
		t.Errorf("config/ has no ko:// reference")
	}
	for _, file := range []string{"ko.yaml", "ko-psk.yaml"} {
		data, err := os.ReadFile("../" + file)
		if err != nil {
			t.Fatal(err)
		}
		// ko.yaml (.ko.yaml) builds the images of config/; ko-psk.yaml is used by hand.
		var want []string
		if file == "ko.yaml" {
			want = refs
		}
		for _, p := range koProblems(t, file, data, want) {
			t.Error(p)
		}
	}
}

// TestKoConfigMutations breaks ko.yaml in memory and expects koProblems to notice.
func TestKoConfigMutations(t *testing.T) {
	good, err := os.ReadFile("../ko.yaml")
	if err != nil {
		t.Fatal(err)
	}
	refs := []string{"ko://mqtt-endpoint/" + mfEndpointPackage}
	if p := koProblems(t, "ko.yaml", good, refs); len(p) > 0 {
		t.Fatalf("the unmutated ko.yaml has problems: %v", p)
	}
	cases := []struct{ name, old, new, want string }{
		{"misspelt key", "    ldflags:", "    ldflag:", "field ldflag not found in type"},
		{"misspelt template key", "      - -s -w", "      - -s -w -X main.version={{.Git.Shortcommit}}", `map has no entry for key "Shortcommit"`},
		{"build for another path", "main: ./cmd/mqtt-endpoint", "main: ./cmd/mqtt-endpoint/", ""},
		{"no build for the config/ image", "main: ./cmd/mqtt-endpoint", "main: ./sink", "ko://mqtt-endpoint/cmd/mqtt-endpoint has no build in ko.yaml"},
		{"cgo on the static base", "      - CGO_ENABLED=0", "      - CGO_ENABLED=1", "env must hold CGO_ENABLED=0"},
		{"not distroless nonroot", "static-debian12:nonroot", "static-debian12:latest", "want a distroless static image with the nonroot tag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.Count(string(good), c.old) != 1 {
				t.Fatalf("%q does not occur once in ko.yaml", c.old)
			}
			data := []byte(strings.Replace(string(good), c.old, c.new, 1))
			problems := koProblems(t, "ko.yaml", data, refs)
			if c.want == "" { // a harmless spelling: must stay clean
				if len(problems) > 0 {
					t.Errorf("want no problem, got %v", problems)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Errorf("want a problem containing %q, got %v", c.want, problems)
		})
	}
}

// koProblems checks one ko config file: strictly known keys, the base image, build entries that
// are main packages with valid templates, and (for wantRefs) a build entry per ko:// reference.
func koProblems(t *testing.T, file string, data []byte, wantRefs []string) []string {
	t.Helper()
	module, err := mfGo("list", "-m")
	if err != nil {
		t.Fatal(err)
	}
	module = strings.TrimSpace(module)
	var problems []string
	addf := func(format string, args ...any) { problems = append(problems, file+": "+fmt.Sprintf(format, args...)) }

	var cfg koConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // ko would silently ignore an unknown key
	if err := dec.Decode(&cfg); err != nil {
		addf("%v", err)
		return problems
	}
	if !koDistrolessStaticNonroot.MatchString(cfg.DefaultBaseImage) {
		addf("defaultBaseImage %q: want a distroless static image with the nonroot tag", cfg.DefaultBaseImage)
	}
	if len(cfg.Builds) == 0 {
		addf("no builds: the image would be built without flags")
	}
	builds := map[string]bool{}
	ids := map[string]bool{}
	for _, b := range cfg.Builds {
		if b.ID == "" || ids[b.ID] {
			addf("build %q: ids must be set and unique (ko logs \"Using build config <id>\", which .ci/ko-resolve looks for)", b.ID)
		}
		ids[b.ID] = true
		ip := koImportPath(module, b.Dir, b.Main)
		builds[ip] = true
		if name, err := mfGo("list", "-f", "{{.Name}}", ip); err != nil || strings.TrimSpace(name) != "main" {
			addf("build %s: main %q (%s) is not a main package: %v %s", b.ID, b.Main, ip, err, name)
		}
		for _, s := range slices.Concat(b.Flags, b.Ldflags, b.Env) {
			if err := koTemplate(s); err != nil {
				addf("build %s: %q: %v", b.ID, s, err)
			}
		}
		if wantRefs != nil && !slices.Contains(b.Env, "CGO_ENABLED=0") {
			addf("build %s: env must hold CGO_ENABLED=0 (the base image has no libc)", b.ID)
		}
	}
	for _, r := range wantRefs {
		if !builds[strings.TrimPrefix(r, "ko://")] {
			addf("%s has no build in %s, so ko would build it without the configured flags and ldflags", r, file)
		}
	}
	return problems
}

// koGoEnv is `go env`, which ko offers templates as .GoEnv.
var koGoEnv = sync.OnceValue(func() map[string]string {
	env := map[string]string{}
	if out, err := mfGo("env", "-json"); err == nil {
		_ = json.Unmarshal([]byte(out), &env)
	}
	return env
})

// koImportPath is the import path ko matches a build entry by (options.createBuildConfigMap).
func koImportPath(module, dir, main string) string {
	p := path.Clean(path.Join(dir, main))
	if p == "." {
		return module
	}
	return module + "/" + strings.TrimPrefix(p, "./")
}

// koTemplate executes a flag as ko does (gobuild.go applyTemplating: missingkey=error) on data of
// the same shape, which catches syntax errors and misspelt keys such as .Git.Shortcommit.
func koTemplate(s string) error {
	tmpl, err := template.New("flag").Option("missingkey=error").Parse(s)
	if err != nil {
		return err
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	data := map[string]any{
		"Env":   env,
		"GoEnv": koGoEnv(),
		"Git": map[string]any{
			"Branch": "main", "Tag": "v0.0.0", "ShortCommit": "0000000", "FullCommit": strings.Repeat("0", 40),
			"CommitDate": "1970-01-01T00:00:00Z", "CommitTimestamp": int64(0),
			"IsDirty": false, "IsClean": true, "TreeState": "clean",
		},
		"Date":      "1970-01-01T00:00:00Z",
		"Timestamp": int64(0),
	}
	if err := tmpl.Execute(&bytes.Buffer{}, data); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	return nil
}
