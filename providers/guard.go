package providers

import (
	"errors"

	"fiat/internal/panics"
)

// Call runs one call into a provider and turns a panic in it into an
// error, so a provider bug fails one step (and the transaction rolls back)
// instead of killing the process mid-apply. A panic in a mutating call
// (create, update, retire) leaves its outcome in doubt: the error then
// satisfies errors.Is(err, ErrOutcomeUnknown), and the executor reads the
// object before deciding anything.
func Call(provider, op string, mutating bool, f func() error) (err error) {
	defer func() {
		if err == nil {
			return
		}
		var pe *panics.Error
		if mutating && errors.As(err, &pe) {
			err = &PanicError{Err: pe}
		}
	}()
	defer panics.Recover("provider "+provider+": "+op, &err)
	return f()
}

// PanicError is a mutating provider call that panicked: its outcome is
// unknown.
type PanicError struct{ Err *panics.Error }

func (e *PanicError) Error() string { return e.Err.Error() }
func (e *PanicError) Unwrap() []error {
	return []error{e.Err, ErrOutcomeUnknown}
}
