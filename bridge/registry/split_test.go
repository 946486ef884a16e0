package registry

import "testing"

func TestSplitDocuments(t *testing.T) {
	type doc struct {
		data string
		line int
	}
	tests := []struct {
		name string
		in   string
		want []doc
	}{
		{name: "single", in: "a: 1\n", want: []doc{{"a: 1\n", 1}}},
		{name: "empty input", in: "", want: []doc{{"", 1}}},
		{name: "leading marker", in: "---\na: 1\n", want: []doc{{"", 1}, {"a: 1\n", 2}}},
		{name: "two documents", in: "a: 1\n---\nb: 2\n", want: []doc{{"a: 1\n", 1}, {"b: 2\n", 3}}},
		{name: "marker with comment", in: "a: 1\n--- # x\nb: 2\n", want: []doc{{"a: 1\n", 1}, {"--- # x\nb: 2\n", 2}}},
		{name: "inline content stays with the marker", in: "--- {a: 1}\n", want: []doc{{"", 1}, {"--- {a: 1}\n", 1}}},
		{name: "end marker", in: "a: 1\n...\n", want: []doc{{"a: 1\n", 1}, {"", 3}}},
		{name: "CRLF", in: "a: 1\r\n---\r\nb: 2\r\n", want: []doc{{"a: 1\r\n", 1}, {"b: 2\r\n", 3}}},
		{name: "dashes inside a value are no marker", in: "a: ---\nb: '---'\n", want: []doc{{"a: ---\nb: '---'\n", 1}}},
		{name: "four dashes are no marker", in: "----\n", want: []doc{{"----\n", 1}}},
		{name: "no final newline", in: "a: 1\n---", want: []doc{{"a: 1\n", 1}, {"", 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitDocuments([]byte(tt.in))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d documents, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				if string(got[i].data) != w.data || got[i].line != w.line {
					t.Errorf("document %d = {%q, %d}, want {%q, %d}", i, got[i].data, got[i].line, w.data, w.line)
				}
			}
		})
	}
}
