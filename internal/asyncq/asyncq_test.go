package asyncq

import (
	"sync"
	"testing"
	"time"
)

func TestOrderAndDrain(t *testing.T) {
	var mu sync.Mutex
	var got []int
	q := New(100, func(v int) { mu.Lock(); got = append(got, v); mu.Unlock() })
	for i := 0; i < 50; i++ {
		q.Push(i)
	}
	q.Close()
	q.Close()
	q.Push(99) // ignored after Close
	if len(got) != 50 {
		t.Fatalf("ran %d", len(got))
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("out of order: %v", got)
		}
	}
}

func TestBoundedDropsOldest(t *testing.T) {
	block := make(chan struct{})
	var got []int
	q := New(3, func(v int) {
		if v == 0 {
			<-block
		}
		got = append(got, v)
	})
	q.Push(0)
	time.Sleep(20 * time.Millisecond) // 0 is running and blocked
	start := time.Now()
	for i := 1; i <= 10; i++ {
		q.Push(i)
	}
	if time.Since(start) > 50*time.Millisecond {
		t.Fatal("Push blocked")
	}
	close(block)
	q.Close()
	if q.Dropped() != 7 || len(got) != 4 || got[1] != 8 || got[3] != 10 {
		t.Fatalf("got %v, dropped %d", got, q.Dropped())
	}
}
