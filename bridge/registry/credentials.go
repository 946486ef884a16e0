package registry

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"golang.org/x/crypto/bcrypt"
)

// decodeCredentials decodes {credentials: [...]} at path.
func decodeCredentials(w *walker, path string, v any) []Credential {
	m := w.mapping(path, v, "credentials")
	path = join(path, "credentials")
	var out []Credential
	for i, item := range w.seq(path, m["credentials"]) {
		if c, ok := decodeCredential(w, index(path, i), item); ok {
			out = append(out, c)
		}
	}
	return out
}

// decodeCredential decodes one single-key credential entry; ok is false for
// broken entries and for cert entries, which are accepted and ignored.
func decodeCredential(w *walker, path string, v any) (c Credential, ok bool) {
	m := w.mapping(path, v)
	if m == nil {
		return c, false
	}
	if len(m) != 1 {
		w.addf(path, "must have exactly one of pass, user, psk or cert, got %s", keyList(m))
		return c, false
	}
	problems := len(w.problems)
	for kind, val := range m {
		p := join(path, kind)
		switch kind {
		case "pass":
			c = Credential{Kind: CredentialPass, Password: decodePassword(w, p, val)}
		case "user":
			c = decodeUser(w, p, val)
		case "psk":
			c = decodePSK(w, p, val)
		case "cert":
			return c, false // in Drogue's model, but no code checks it (drogue-mqtt.md §2)
		default:
			w.addf(path, "unknown credential type %q (want pass, user, psk or cert)", kind)
		}
	}
	return c, len(w.problems) == problems
}

// keyList describes the keys of m for an error message.
func keyList(m map[string]any) string {
	if len(m) == 0 {
		return "none"
	}
	return quoteList(sortedKeys(m))
}

// decodeUser decodes {username, password, unique}.
func decodeUser(w *walker, path string, v any) Credential {
	m := w.mapping(path, v, "username", "password", "unique")
	c := Credential{Kind: CredentialUser}
	if m == nil {
		return c
	}
	c.Username = w.name(join(path, "username"), m["username"])
	if pw, ok := m["password"]; ok {
		c.Password = decodePassword(w, join(path, "password"), pw)
	} else {
		w.addf(join(path, "password"), "missing")
	}
	c.Unique = w.flag(join(path, "unique"), m["unique"])
	return c
}

// decodePSK decodes {key: base64, validity: {notBefore, notAfter}}.
func decodePSK(w *walker, path string, v any) Credential {
	m := w.mapping(path, v, "key", "validity")
	c := Credential{Kind: CredentialPSK}
	if m == nil {
		return c
	}
	if key := w.name(join(path, "key"), m["key"]); key != "" {
		b, err := base64.StdEncoding.DecodeString(key)
		switch {
		case err != nil:
			w.addf(join(path, "key"), "not valid base64: %v", err)
		case len(b) == 0:
			w.addf(join(path, "key"), "must not be empty")
		}
		c.PSK = b
	}
	if val, ok := m["validity"]; ok {
		p := join(path, "validity")
		vm := w.mapping(p, val, "notBefore", "notAfter")
		c.NotBefore = decodeTime(w, join(p, "notBefore"), vm["notBefore"])
		c.NotAfter = decodeTime(w, join(p, "notAfter"), vm["notAfter"])
		if !c.NotBefore.IsZero() && !c.NotAfter.IsZero() && c.NotAfter.Before(c.NotBefore) {
			w.addf(p, "notAfter is before notBefore")
		}
	}
	return c
}

// decodeTime parses an optional RFC 3339 timestamp.
func decodeTime(w *walker, path string, v any) time.Time {
	s := w.optional(path, v)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		w.addf(path, "not an RFC 3339 time: %q", s)
	}
	return t
}

// decodePassword decodes a plain string or a single-key map {plain: s},
// {bcrypt: hash} or {sha512: hash}, validating hashes up front.
func decodePassword(w *walker, path string, v any) Password {
	m, ok := v.(map[string]any)
	switch s, isString := v.(string); {
	case isString:
		return Password{Plain: checkPlain(w, path, s)}
	case !ok:
		w.addf(path, "must be a string or a mapping, got %s%s", describe(v), quoteHint(v))
		return Password{}
	case len(m) != 1:
		w.addf(path, "must be a string or have exactly one of plain, bcrypt or sha512, got %s", keyList(m))
		return Password{}
	}
	for typ, val := range m {
		p := join(path, typ)
		if typ != "plain" && typ != "bcrypt" && typ != "sha512" {
			w.addf(path, "unknown password type %q (want plain, bcrypt or sha512)", typ)
			break
		}
		s, ok := val.(string)
		if !ok {
			w.str(p, val) // records the problem
			break
		}
		switch typ {
		case "plain":
			return Password{Plain: checkPlain(w, p, s)}
		case "bcrypt":
			return Password{Bcrypt: checkBcrypt(w, p, s)}
		default:
			return Password{SHA512: checkSHA512(w, p, s)}
		}
	}
	return Password{}
}

// checkPlain refuses an empty plain password, which a zero Password could
// not be told apart from.
func checkPlain(w *walker, path, s string) string {
	if s == "" {
		w.addf(path, "empty password")
	}
	return s
}

// checkBcrypt validates a $2a$, $2b$ or $2y$ bcrypt hash.
func checkBcrypt(w *walker, path, s string) string {
	switch {
	case s == "":
		w.addf(path, "empty hash")
	case !strings.HasPrefix(s, "$2a$") && !strings.HasPrefix(s, "$2b$") && !strings.HasPrefix(s, "$2y$"):
		w.addf(path, "not a bcrypt hash (want $2a$, $2b$ or $2y$)")
	case !cryptAlphabet(s):
		w.addf(path, "invalid bcrypt hash: characters outside the crypt alphabet")
	default:
		if _, err := bcrypt.Cost([]byte(s)); err != nil {
			w.addf(path, "invalid bcrypt hash: %v", err)
		}
	}
	return s
}

// checkSHA512 validates a $6$ SHA-512 crypt hash.
func checkSHA512(w *walker, path, s string) string {
	switch {
	case s == "":
		w.addf(path, "empty hash")
	case !strings.HasPrefix(s, "$6$"):
		w.addf(path, "not a SHA-512 crypt hash (want $6$)")
	case !cryptAlphabet(s):
		w.addf(path, "invalid SHA-512 crypt hash: characters outside the crypt alphabet")
	default:
		if _, err := shacrypt.DecodeVariant(shacrypt.VariantSHA512)(s); err != nil {
			w.addf(path, "invalid SHA-512 crypt hash: %v", err)
		}
	}
	return s
}

// cryptAlphabet reports whether s uses only the characters of crypt(3)
// strings: the hash alphabet "./0-9A-Za-z", '$' separators and '=' of
// "rounds=N". Callers rely on it: no NUL, no blanks, no control characters.
func cryptAlphabet(s string) bool {
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case r == '.', r == '/', r == '$', r == '=':
		default:
			return false
		}
	}
	return true
}
