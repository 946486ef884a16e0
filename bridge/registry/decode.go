package registry

import "fmt"

// Object kinds accepted in a document's kind field.
const (
	kindApplication = "Application"
	kindDevice      = "Device"
)

// metadataFields returns the metadata fields an object accepts: own, plus
// fields accepted and ignored, namely Kubernetes-style labels and
// annotations and the read-only fields an object exported from Drogue Cloud
// carries.
func metadataFields(own ...string) []string {
	return append(own, "annotations", "creationTimestamp", "finalizers", "generation", "labels", "resourceVersion")
}

// decodeObject decodes one non-empty document into an Application or a
// Device; problems are recorded in w.
func decodeObject(w *walker, v any) (*Application, *Device) {
	top := w.mapping("", v, "apiVersion", "kind", "metadata", "spec", "status")
	if top == nil {
		return nil, nil
	}
	kind, ok := top["kind"]
	switch {
	case !ok || kind == nil:
		w.addf("kind", "missing (want Application or Device)")
	case kind == kindApplication:
		return decodeApplication(w, top), nil
	case kind == kindDevice:
		return nil, decodeDevice(w, top)
	default:
		w.addf("kind", "unknown kind %v (want Application or Device)", quoted(kind))
	}
	return nil, nil
}

// quoted formats a decoded scalar for an error message.
func quoted(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// label names a document's object for error messages, as far as it can be
// read: "Device app1/sensor01", "Application app1", or just the kind.
func label(v any) string {
	top, _ := v.(map[string]any)
	kind, _ := top["kind"].(string)
	meta, _ := top["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	app, _ := meta["application"].(string)
	switch {
	case kind == "":
		return ""
	case name == "":
		return printable(kind)
	case kind == kindDevice && app != "":
		return printable(kind + " " + app + "/" + name)
	default:
		return printable(kind + " " + name)
	}
}

// decodeApplication decodes the fields of an Application object.
func decodeApplication(w *walker, top map[string]any) *Application {
	meta := w.mapping("metadata", top["metadata"], metadataFields("name", "uid")...)
	app := &Application{}
	if meta != nil {
		app.Name = w.name("metadata.name", meta["name"])
		app.UID = w.optional("metadata.uid", meta["uid"])
	}
	spec := w.mapping("spec", top["spec"], "core", "mqtt", "trustAnchors")
	app.Disabled = decodeCore(w, "spec.core", spec)
	if v, ok := spec["mqtt"]; ok {
		app.Dialect = decodeMQTT(w, "spec.mqtt", v)
	}
	if v, ok := spec["trustAnchors"]; ok {
		decodeTrustAnchors(w, "spec.trustAnchors", v, app)
	}
	return app
}

// decodeDevice decodes the fields of a Device object.
func decodeDevice(w *walker, top map[string]any) *Device {
	meta := w.mapping("metadata", top["metadata"], metadataFields("name", "uid", "application")...)
	dev := &Device{}
	if meta != nil {
		dev.Name = w.name("metadata.name", meta["name"])
		dev.Application = w.name("metadata.application", meta["application"])
		dev.UID = w.optional("metadata.uid", meta["uid"])
	}
	spec := w.mapping("spec", top["spec"], "alias", "authentication", "core", "credentials", "gatewaySelector", "mqtt")
	dev.Disabled = decodeCore(w, "spec.core", spec)
	dev.Aliases = w.names("spec.alias", spec["alias"])
	// The legacy spec.credentials is read only when spec.authentication is
	// absent (drogue-mqtt.md §2).
	if v, ok := spec["authentication"]; ok {
		dev.Credentials = decodeCredentials(w, "spec.authentication", v)
	} else if v, ok := spec["credentials"]; ok {
		dev.Credentials = decodeCredentials(w, "spec.credentials", v)
	}
	if v, ok := spec["gatewaySelector"]; ok {
		sel := w.mapping("spec.gatewaySelector", v, "matchNames")
		dev.Gateways = w.names("spec.gatewaySelector.matchNames", sel["matchNames"])
	}
	if v, ok := spec["mqtt"]; ok {
		dev.Dialect = decodeMQTT(w, "spec.mqtt", v)
	}
	return dev
}

// decodeCore returns spec.core.disabled.
func decodeCore(w *walker, path string, spec map[string]any) bool {
	core := w.mapping(path, spec["core"], "disabled")
	return w.flag(join(path, "disabled"), core["disabled"])
}

// decodeMQTT decodes spec.mqtt; a present section without a dialect means
// drogue/v1 (drogue-mqtt.md §3).
func decodeMQTT(w *walker, path string, v any) *Dialect {
	m := w.mapping(path, v, "dialect")
	d, ok := m["dialect"]
	if !ok {
		return &Dialect{Type: DialectDrogueV1}
	}
	path = join(path, "dialect")
	dm := w.mapping(path, d, "type", "devicePrefix")
	if dm == nil {
		return nil
	}
	typ, ok := dm["type"]
	if !ok || typ == nil {
		w.addf(join(path, "type"), "missing (want %s or %s)", DialectDrogueV1, DialectPlainTopic)
		return nil
	}
	switch typ {
	case DialectDrogueV1:
		if _, ok := dm["devicePrefix"]; ok {
			w.addf(join(path, "devicePrefix"), "only valid with type %s", DialectPlainTopic)
		}
		return &Dialect{Type: DialectDrogueV1}
	case DialectPlainTopic:
		return &Dialect{Type: DialectPlainTopic, DevicePrefix: w.flag(join(path, "devicePrefix"), dm["devicePrefix"])}
	default:
		w.addf(join(path, "type"), "unknown dialect %s (want %s or %s)", quoted(typ), DialectDrogueV1, DialectPlainTopic)
		return nil
	}
}

// decodeTrustAnchors decodes spec.trustAnchors into app's TrustAnchors and
// Anchors; an anchor that does not parse is a problem of its index.
func decodeTrustAnchors(w *walker, path string, v any, app *Application) {
	m := w.mapping(path, v, "anchors")
	path = join(path, "anchors")
	for i, item := range w.seq(path, m["anchors"]) {
		p := index(path, i)
		anchor := w.mapping(p, item, "certificate")
		if anchor == nil {
			continue
		}
		p = join(p, "certificate")
		c := w.name(p, anchor["certificate"])
		if c == "" {
			continue
		}
		app.TrustAnchors = append(app.TrustAnchors, c)
		certs, err := parseAnchor(c)
		if err != nil {
			w.addf(p, "%v", err)
			continue
		}
		for _, cert := range certs {
			app.Anchors = append(app.Anchors, cert)
			app.anchorOf = append(app.anchorOf, i)
		}
	}
}
