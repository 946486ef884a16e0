package bridge

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

type ackRecord struct {
	id  uint16
	err error
}

func TestAckQueueOrder(t *testing.T) {
	errBusy := errors.New("busy")
	tests := []struct {
		name     string
		ids      []uint16
		complete []int // indexes of ids in completion order
		errs     map[int]error
		stopAt   uint16 // flush returns false for this id
		want     []ackRecord
	}{
		{"in order", []uint16{1, 2, 3}, []int{0, 1, 2}, nil, 0, []ackRecord{{1, nil}, {2, nil}, {3, nil}}},
		{"reverse completion", []uint16{1, 2, 3}, []int{2, 1, 0}, nil, 0, []ackRecord{{1, nil}, {2, nil}, {3, nil}}},
		{"middle first", []uint16{7, 8, 9}, []int{1, 0, 2}, nil, 0, []ackRecord{{7, nil}, {8, nil}, {9, nil}}},
		{"failure keeps its place", []uint16{1, 2, 3}, []int{2, 1, 0}, map[int]error{1: errBusy}, 0, []ackRecord{{1, nil}, {2, errBusy}, {3, nil}}},
		{"stop after failure flushes nothing more", []uint16{1, 2, 3}, []int{0, 1, 2}, map[int]error{1: errBusy}, 2, []ackRecord{{1, nil}, {2, errBusy}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []ackRecord
			q := newAckQueue(len(tt.ids), func(id uint16, err error) bool {
				got = append(got, ackRecord{id, err})
				return id != tt.stopAt
			})
			fs := make([]*inflight, len(tt.ids))
			for i, id := range tt.ids {
				f, err := q.reserve(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				fs[i] = f
			}
			for _, i := range tt.complete {
				q.complete(fs[i], tt.errs[i])
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d acks %v, want %d %v", len(got), got, len(tt.want), tt.want)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("acks = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAckQueueWindowBlocks(t *testing.T) {
	q := newAckQueue(2, func(uint16, error) bool { return true })
	a, _ := q.reserve(context.Background(), 1)
	if _, err := q.reserve(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := q.reserve(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third reserve in a window of 2: err = %v, want deadline exceeded", err)
	}
	q.complete(a, nil)
	if _, err := q.reserve(context.Background(), 3); err != nil {
		t.Fatalf("reserve after an ack freed a slot: %v", err)
	}
	if n := q.len(); n != 2 {
		t.Fatalf("len = %d, want 2", n)
	}
}
