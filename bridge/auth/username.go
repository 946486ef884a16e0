package auth

import "strings"

// ParseUsername splits s at the first '@' into a device and an application
// (drogue-mqtt.md §1 "How a username is split"). The device part is
// percent-decoded and the application part, which may hold further '@', is
// used as is. ok is false when s has no '@' or either part is empty.
//
// Decoding is lossy, as in Drogue: a '%' not followed by two hex digits is
// kept as is (not an error), '+' stays '+', and bytes that do not form valid
// UTF-8 after decoding become U+FFFD.
func ParseUsername(s string) (device, app string, ok bool) {
	rawDevice, app, found := strings.Cut(s, "@")
	if !found || rawDevice == "" || app == "" {
		return "", "", false
	}
	return percentDecode(rawDevice), app, true
}

// percentDecode decodes %XX escapes, keeping invalid ones literally.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, okHi := unhex(s[i+1])
			lo, okLo := unhex(s[i+2])
			if okHi && okLo {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// unhex returns the value of a hex digit.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	default:
		return 0, false
	}
}
