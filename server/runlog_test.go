package server

import (
	"context"
	"testing"
	"time"
)

// A follower that starts after the run ended, or reads its last frames
// and its end at once, gets every frame and returns: a push whose run had
// already finished used to wait on a log that would never change again.
func TestFollowFinishedLog(t *testing.T) {
	for _, from := range []int{0, 1, 2, 5} {
		l := newRunLog()
		l.add(Frame{Out: "a\n"})
		l.add(Frame{Out: "b\n"})
		l.finish()
		var got []string
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := l.follow(ctx, from, func(f Frame) error { got = append(got, f.Out); return nil }, nil)
		cancel()
		if err != nil {
			t.Fatalf("follow from %d of a finished log: %v (frames %q)", from, err, got)
		}
		if want := max(0, 2-from); len(got) != want {
			t.Errorf("follow from %d: frames %q, want %d", from, got, want)
		}
	}
	// Live: frames added and the end, while a follower waits.
	l := newRunLog()
	done := make(chan []string)
	go func() {
		var got []string
		l.follow(context.Background(), 0, func(f Frame) error { got = append(got, f.Out); return nil }, nil)
		done <- got
	}()
	l.add(Frame{Out: "x\n"})
	l.add(Frame{Out: "y\n"})
	l.finish()
	select {
	case got := <-done:
		if len(got) != 2 {
			t.Errorf("live follow: %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("live follow did not return after finish")
	}
}
