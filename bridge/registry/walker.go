package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// walker reads a document decoded from JSON (maps, slices, strings,
// json.Number, bools, nil) and collects every problem with its field path
// instead of stopping at the first one.
type walker struct {
	problems []string
}

// addf records a problem at path.
func (w *walker) addf(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	w.problems = append(w.problems, printable(msg))
}

// mapping returns v as a mapping, reporting keys not in known as unknown
// fields; known == nil accepts any key. A null value is an empty mapping. It
// returns nil (and records a problem) when v is not a mapping.
func (w *walker) mapping(path string, v any, known ...string) map[string]any {
	if v == nil {
		return map[string]any{}
	}
	m, ok := v.(map[string]any)
	if !ok {
		w.addf(path, "must be a mapping, got %s", describe(v))
		return nil
	}
	if known != nil {
		for _, k := range sortedKeys(m) {
			if !slices.Contains(known, k) {
				w.addf(join(path, k), "unknown field")
			}
		}
	}
	return m
}

// str returns v as a string. Numbers and booleans are refused rather than
// converted: YAML 1.1 would silently turn "0123" into 83 and "yes" into true.
func (w *walker) str(path string, v any) string {
	s, ok := v.(string)
	if !ok {
		w.addf(path, "must be a string, got %s%s", describe(v), quoteHint(v))
	}
	return s
}

// optional returns v as a string, or "" when it is null or absent.
func (w *walker) optional(path string, v any) string {
	if v == nil {
		return ""
	}
	return w.str(path, v)
}

// name returns v as a string that must be present and not empty.
func (w *walker) name(path string, v any) string {
	switch s, ok := v.(string); {
	case v == nil:
		w.addf(path, "missing")
	case ok && s == "":
		w.addf(path, "must not be empty")
	default:
		return w.str(path, v)
	}
	return ""
}

// flag returns v as a boolean; null is false.
func (w *walker) flag(path string, v any) bool {
	if v == nil {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		w.addf(path, "must be true or false, got %s", describe(v))
	}
	return b
}

// seq returns v as a sequence; null is empty.
func (w *walker) seq(path string, v any) []any {
	if v == nil {
		return nil
	}
	s, ok := v.([]any)
	if !ok {
		w.addf(path, "must be a sequence, got %s", describe(v))
	}
	return s
}

// names returns v as a sequence of non-empty strings.
func (w *walker) names(path string, v any) []string {
	items := w.seq(path, v)
	if len(items) == 0 {
		return nil
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		if s := w.name(index(path, i), item); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// describe names the YAML type of a decoded value for error messages.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a sequence"
	case map[string]any:
		return "a mapping"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// quoteHint suggests quoting a scalar that YAML did not read as a string.
func quoteHint(v any) string {
	switch v.(type) {
	case json.Number, bool:
		return " (quote the value)"
	default:
		return ""
	}
}

// sortedKeys returns the keys of m in order, so that problems are reported
// deterministically.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// join appends a field name to a path.
func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// index appends a sequence index to a path.
func index(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

// printable escapes control characters, so that every problem stays on one
// line of the joined error whatever the input held.
func printable(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// quoteList formats keys as a comma-separated list of quoted strings.
func quoteList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, ", ")
}
