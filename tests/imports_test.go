package tests

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestImportBoundaries keeps the layout of SPEC §2 honest: only bridge speaks MQTT (mochi stays
// swappable behind it), and source and sink depend on no other package of the module.
func TestImportBoundaries(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		inBridge := p.ImportPath == "mqtt-endpoint/bridge" || strings.HasPrefix(p.ImportPath, "mqtt-endpoint/bridge/")
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "github.com/mochi-mqtt/") && !inBridge {
				t.Errorf("%s imports %s: only bridge may use mochi", p.ImportPath, imp)
			}
			leaf := p.ImportPath == "mqtt-endpoint/source" || p.ImportPath == "mqtt-endpoint/sink"
			if leaf && strings.HasPrefix(imp, "mqtt-endpoint/") {
				t.Errorf("%s imports %s: source and sink import no internal package", p.ImportPath, imp)
			}
		}
	}
}
