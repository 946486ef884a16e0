package source

import "strings"

const upperHex = "0123456789ABCDEF"

// Encode percent-encodes every byte of s outside [A-Za-z0-9] as %XX with
// uppercase hex, as Drogue's NON_ALPHANUMERIC set does (SPEC §6); it returns s
// itself, without allocating, when nothing needs escaping.
func Encode(s string) string {
	n := encodedLen(s)
	if n == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(n)
	writeEncoded(&b, s)
	return b.String()
}

// encodedLen returns the length of Encode(s).
func encodedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			n += 2
		}
	}
	return n
}

// writeEncoded writes Encode(s) to b.
func writeEncoded(b *strings.Builder, s string) {
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
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
