package executor

import (
	"sync"
	"time"
)

// EventKind names a moment of an apply.
type EventKind string

const (
	EventStart       EventKind = "start"        // an operation begins
	EventProgress    EventKind = "progress"     // it is still running
	EventDone        EventKind = "done"         // it succeeded
	EventFailed      EventKind = "failed"       // it failed
	EventCancelled   EventKind = "cancelled"    // it was stopped in flight (interrupt, lost lock, another step failed)
	EventUndoStart   EventKind = "undo-start"   // rollback of one operation begins
	EventUndone      EventKind = "undone"       // it was rolled back
	EventUndoFailed  EventKind = "undo-failed"  // it could not be rolled back
	EventCommitted   EventKind = "committed"    // the new revision is visible
	EventPurged      EventKind = "purged"       // a retired object was destroyed
	EventPurgeFailed EventKind = "purge-failed" // ...or could not be
	EventRecovering  EventKind = "recovering"   // a crashed run's transaction is being settled
	EventWarning     EventKind = "warning"      // something the operator should know (in Err)
	EventOutput      EventKind = "output"       // a line a provisioner printed (in Err)
)

// Event is one line of progress.
type Event struct {
	Time      time.Time     `json:"time"`
	Kind      EventKind     `json:"kind"`
	Address   string        `json:"address,omitempty"`
	Operation string        `json:"operation,omitempty"`
	Elapsed   time.Duration `json:"elapsed_ns,omitempty"`
	Err       string        `json:"error,omitempty"`
	Revision  uint64        `json:"revision,omitempty"`
	TxID      string        `json:"tx,omitempty"`
}

// emitter serialises events from concurrent steps.
type emitter struct {
	mu sync.Mutex
	fn func(Event)
}

func newEmitter(fn func(Event)) *emitter { return &emitter{fn: fn} }

func (e *emitter) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fn(ev)
}
