package registry

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"sigs.k8s.io/yaml"
)

// maxProblems bounds the problems listed in one error; a systematic mistake
// in a large registry should not produce a megabyte-long log line.
const maxProblems = 100

// source is the content of one registry file.
type source struct {
	name string
	data []byte
}

// Parse parses one file of multi-document YAML (SPEC §4); name labels the
// problems listed in the error. Every problem is reported (up to 100, then a
// count), one per line, each naming the file, the document and the object.
func Parse(name string, data []byte) (*Registry, error) {
	return parseSources([]source{{name: name, data: data}})
}

// parseSources parses and validates the objects of all sources together.
func parseSources(srcs []source) (*Registry, error) {
	var b builder
	for i, src := range srcs {
		b.addFile(i, src)
	}
	return b.build()
}

// position orders problems by file and document.
type position struct{ file, doc int }

// placed is a decoded object and where it was defined.
type placed[T any] struct {
	obj   T
	pos   position
	where string // "file: document N (Kind name)"
}

// problem is an error and the position it is reported at.
type problem struct {
	pos position
	err error
}

// builder collects the objects of all files and the problems found.
type builder struct {
	apps     []placed[*Application]
	devs     []placed[*Device]
	problems []problem
}

// problemf records a problem of the object or document at where.
func (b *builder) problemf(pos position, where, format string, args ...any) {
	b.problems = append(b.problems, problem{pos, fmt.Errorf("%s: %s", where, printable(fmt.Sprintf(format, args...)))})
}

// addFile decodes every non-empty document of src, the file-th source.
func (b *builder) addFile(file int, src source) {
	n := 0 // index of the last non-empty document
	for _, doc := range splitDocuments(src.data) {
		v, err := decodeYAML(doc.data)
		if err != nil {
			n++
			b.problemf(position{file, n}, fmt.Sprintf("%s: document %d", src.name, n), "invalid YAML: %v", b.fileLines(doc, err))
			continue
		}
		if v == nil {
			continue // empty document: only comments, or nothing between separators
		}
		n++
		pos := position{file, n}
		where := fmt.Sprintf("%s: document %d", src.name, n)
		if l := label(v); l != "" {
			where += " (" + l + ")"
		}
		var w walker
		app, dev := decodeObject(&w, v)
		for _, p := range w.problems {
			b.problems = append(b.problems, problem{pos, errors.New(where + ": " + p)})
		}
		// Keep identifiable objects even when broken, so that duplicates and
		// clashes are reported in the same pass.
		switch {
		case app != nil && app.Name != "":
			b.apps = append(b.apps, placed[*Application]{app, pos, where})
		case dev != nil && dev.Name != "" && dev.Application != "":
			b.devs = append(b.devs, placed[*Device]{dev, pos, where})
		}
	}
}

// fileLines returns the YAML error of doc with line numbers counted from
// the start of the file rather than of the document, by parsing it again
// behind as many empty lines as precede it. Only the first problems get this
// treatment, which keeps a file of many broken documents linear.
func (b *builder) fileLines(doc document, err error) error {
	if len(b.problems) >= maxProblems || doc.line <= 1 {
		return err
	}
	padded := append(bytes.Repeat([]byte("\n"), doc.line-1), doc.data...)
	if _, perr := decodeYAML(padded); perr != nil {
		return perr
	}
	return err
}

// decodeYAML converts one YAML document to its JSON data model, refusing
// duplicate keys; an empty document yields nil.
func decodeYAML(data []byte) (any, error) {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// owner is the object a lookup key belongs to.
type owner struct {
	obj   any
	where string
	role  string
}

// claim registers key for obj in idx; it reports a clash with another object
// and returns false.
func (b *builder) claim(idx map[string]owner, k lookupKey, obj any, pos position, where, what string) bool {
	prev, ok := idx[k.key]
	switch {
	case !ok:
		idx[k.key] = owner{obj: obj, where: where, role: k.role}
		return true
	case prev.obj == obj:
		return true // e.g. an alias repeating the object's own name
	case k.role == "name" && prev.role == "name":
		b.problemf(pos, where, "duplicate %s name %q, first defined at %s", what, k.key, prev.where)
	default:
		b.problemf(pos, where, "%s %q is also the %s of %s", k.role, k.key, prev.role, prev.where)
	}
	return false
}

// build checks the objects against each other and indexes them.
func (b *builder) build() (*Registry, error) {
	reported := b.checkAnchors()
	appIdx := make(map[string]owner)
	appNames := make(map[string]bool)
	for _, a := range b.apps {
		for _, k := range appKeys(a.obj) {
			if k.role == roleAnchor && reported[a.obj][k.key] {
				continue // the shared CA subject is reported already
			}
			if b.claim(appIdx, k, a.obj, a.pos, a.where, "application") && k.role == "name" {
				appNames[a.obj.Name] = true
			}
		}
	}
	devIdx := make(map[string]map[string]owner) // by application name
	for _, d := range b.devs {
		if !appNames[d.obj.Application] {
			b.problemf(d.pos, d.where, "application %q not found", d.obj.Application)
			continue
		}
		idx := devIdx[d.obj.Application]
		if idx == nil {
			idx = make(map[string]owner)
			devIdx[d.obj.Application] = idx
		}
		for _, k := range deviceKeys(d.obj) {
			if !b.claim(idx, k, d.obj, d.pos, d.where, "device") && k.role == "name" {
				break // a duplicate: its aliases would only repeat the clash
			}
		}
	}
	if len(b.problems) > 0 {
		slices.SortStableFunc(b.problems, func(x, y problem) int {
			return cmp.Or(cmp.Compare(x.pos.file, y.pos.file), cmp.Compare(x.pos.doc, y.pos.doc))
		})
		return nil, joinProblems(b.problems)
	}
	return b.index(), nil
}

// index builds the Registry of valid, consistent objects.
func (b *builder) index() *Registry {
	r := &Registry{
		apps:     make(map[string]*Application, len(b.apps)),
		devices:  make(map[string]map[string]*Device, len(b.apps)),
		devLists: make(map[string][]*Device, len(b.apps)),
		issuers:  make(map[string]*Application),
		nDevices: len(b.devs),
	}
	for _, a := range b.apps {
		for _, k := range appKeys(a.obj) {
			r.apps[k.key] = a.obj
		}
		for _, c := range a.obj.Anchors {
			r.issuers[string(c.RawSubject)] = a.obj
		}
		r.appList = append(r.appList, a.obj)
	}
	for _, d := range b.devs {
		idx := r.devices[d.obj.Application]
		if idx == nil {
			idx = make(map[string]*Device)
			r.devices[d.obj.Application] = idx
		}
		for _, k := range deviceKeys(d.obj) {
			idx[k.key] = d.obj
		}
		r.devLists[d.obj.Application] = append(r.devLists[d.obj.Application], d.obj)
	}
	sortByName(r.appList, func(a *Application) string { return a.Name })
	for _, l := range r.devLists {
		sortByName(l, func(d *Device) string { return d.Name })
	}
	return r
}

// joinProblems joins at most maxProblems problems into one error.
func joinProblems(problems []problem) error {
	errs := make([]error, 0, min(len(problems), maxProblems+1))
	for _, p := range problems[:min(len(problems), maxProblems)] {
		errs = append(errs, p.err)
	}
	if more := len(problems) - maxProblems; more > 0 {
		errs = append(errs, fmt.Errorf("... and %d more problems", more))
	}
	return errors.Join(errs...)
}
