package source

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

func TestConsoleSender(t *testing.T) {
	var buf bytes.Buffer
	f := NewForwarder(NewConsoleSender(&buf), Options{})
	closeForwarder(t, f)

	pubs := []Publish{
		testPublish(),
		{Application: "app1", Device: "d", Channel: "bin", Payload: []byte{0, 1, 2}},
		ConnectionEvent(Publish{Application: "app1", Device: "d"}, true),
	}
	const per = 20
	var wg sync.WaitGroup
	for _, p := range pubs {
		for range per {
			wg.Go(func() {
				if err := f.Forward(t.Context(), p); err != nil {
					t.Errorf("Forward: %v", err)
				}
			})
		}
	}
	wg.Wait()

	counts := make(map[string]int)
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var e cloudevents.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q is not a structured CloudEvent: %v", sc.Bytes(), err)
		}
		if err := e.Validate(); err != nil {
			t.Errorf("line %q: %v", sc.Bytes(), err)
		}
		counts[e.Subject()]++
	}
	for _, p := range pubs {
		if counts[p.Channel] != per {
			t.Errorf("%d lines for %q, want %d", counts[p.Channel], p.Channel, per)
		}
	}
}

func TestConsoleSenderResults(t *testing.T) {
	valid, err := EventBuilder{}.Event(testPublish(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		e    cloudevents.Event
		w    *failingWriter
		want error // classified
	}{
		{"valid event is acknowledged", valid, nil, nil},
		{"invalid event is rejected like a 400", cloudevents.NewEvent(), nil, ErrSinkRejected},
		{"write failure is unavailable", valid, &failingWriter{}, ErrSinkUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sender
			if tt.w != nil {
				s = NewConsoleSender(tt.w)
			} else {
				s = NewConsoleSender(&bytes.Buffer{})
			}
			if got := classify(s.Send(t.Context(), tt.e)); got != tt.want {
				t.Errorf("classified result = %v, want %v", got, tt.want)
			}
		})
	}
}

type failingWriter struct{}

func (*failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }
