package registry

import "bytes"

// document is one YAML document of a multi-document stream.
type document struct {
	data []byte
	line int // 1-based line of the file where data starts
}

// splitDocuments splits a YAML stream at "---" and "..." marker lines, as
// Kubernetes' YAML reader does; text after a "---" marker on the same line
// (a comment, or inline content) belongs to the next document. Documents are
// returned even when empty, so that the caller decides what is empty.
// A "---" line with content after the marker stays with the document it
// starts, so that YAML sees the content at its original column.
func splitDocuments(data []byte) []document {
	var docs []document
	start, startLine := 0, 1
	line := 1
	for pos := 0; pos < len(data); line++ {
		end := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if end >= 0 {
			next = pos + end + 1
		}
		text := bytes.TrimRight(data[pos:next], "\r\n")
		if isMarker(text, "---") || isMarker(text, "...") {
			docs = append(docs, document{data: data[start:pos], line: startLine})
			start, startLine = next, line+1
			if bytes.HasPrefix(text, []byte("---")) && len(bytes.TrimSpace(text[3:])) > 0 {
				start, startLine = pos, line // inline content: the marker stays with it
			}
		}
		pos = next
	}
	return append(docs, document{data: data[start:], line: startLine})
}

// isMarker reports whether line is the marker alone or followed by blanks.
func isMarker(line []byte, marker string) bool {
	rest, ok := bytes.CutPrefix(line, []byte(marker))
	return ok && (len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t')
}
