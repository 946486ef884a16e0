package source

import "strings"

const upperHex = "0123456789ABCDEF"

// Encode percent-encodes every byte of s outside [A-Za-z0-9] as %XX with
// uppercase hex, as Drogue's NON_ALPHANUMERIC set does (SPEC §6); it returns s
// itself, without allocating, when nothing needs escaping.
func Encode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0x0f])
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
