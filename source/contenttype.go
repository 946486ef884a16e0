package source

import (
	"encoding/json"
	"fmt"
	"mime"
	"strings"
)

const (
	contentTypeJSON   = "application/json"
	contentTypeBinary = "application/octet-stream"
)

// ContentType returns the datacontenttype of an event whose MQTT v5 Content
// Type property is ct ("" when absent) and whose data is payload (SPEC §6,
// drogue-mqtt.md §5).
//
// A JSON-like ct (starting with application/json or text/json, or a media type
// ending in +json, case-insensitively) gives exactly application/json and
// requires payload to be valid JSON. Any other ct is returned unchanged if it
// is a valid media type. Without ct the result is application/json when
// payload is valid JSON (scalars and null included) and
// application/octet-stream otherwise, an empty payload included. The error
// wraps ErrPayloadInvalid.
func ContentType(ct string, payload []byte) (string, error) {
	if ct == "" {
		if mayBeJSON(payload) && json.Valid(payload) {
			return contentTypeJSON, nil
		}
		return contentTypeBinary, nil
	}
	if isJSONLike(ct) {
		if !json.Valid(payload) {
			return "", fmt.Errorf("content type %q: payload is not JSON: %w", ct, ErrPayloadInvalid)
		}
		return contentTypeJSON, nil
	}
	// The CloudEvents SDK refuses to send an event whose datacontenttype is
	// not an RFC 2046 media type, so refuse it here where the device learns.
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return "", fmt.Errorf("content type %q: %w: %w", ct, ErrPayloadInvalid, err)
	}
	return ct, nil
}

// isJSONLike reports whether ct names JSON, by Drogue's rule.
func isJSONLike(ct string) bool {
	if hasPrefixFold(ct, "application/json") || hasPrefixFold(ct, "text/json") {
		return true
	}
	media, _, _ := strings.Cut(ct, ";")
	return hasSuffixFold(strings.TrimSpace(media), "+json")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// mayBeJSON reports whether payload could be a JSON text, judging by its first
// non-blank byte; it spares binary payloads json.Valid and its allocations.
func mayBeJSON(payload []byte) bool {
	for _, c := range payload {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[', '"', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return true
		default:
			return false
		}
	}
	return false
}
