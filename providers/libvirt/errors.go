package libvirt

import (
	"context"
	"errors"
	"fmt"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"fiat/providers"
)

// ErrConflict marks a create that libvirt refused because an object with the
// same name (or, for a pool, the same source path) already exists. The error
// is a *providers.Error whose Message names the existing object.
var ErrConflict = providers.ErrConflict

// conflictError is a *providers.Error for which errors.Is(err, ErrConflict).
type conflictError struct{ cause error }

func (e conflictError) Error() string   { return e.cause.Error() }
func (e conflictError) Unwrap() []error { return []error{ErrConflict, e.cause} }

// mutErr turns the failure of a mutating libvirt call into the provider's
// error: libvirt's own errors become *providers.Error with libvirt's code and
// message; anything else (the connection dropped, EOF, EINVAL, broken pipe)
// leaves the outcome in doubt and satisfies errors.Is(err, ErrOutcomeUnknown).
// A cancelled ctx is returned as is: mutating calls check ctx before they
// start, never during, so nothing was sent.
func mutErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := backendErr(op, err); ok {
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w (libvirt connection: %w)", op, providers.ErrOutcomeUnknown, err)
}

// readErr is mutErr for calls that change nothing: a lost connection is a
// plain failure to read.
func readErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := backendErr(op, err); ok {
		return e
	}
	return fmt.Errorf("%s: %w", op, err)
}

func backendErr(op string, err error) (error, bool) {
	var le golibvirt.Error
	if !errors.As(err, &le) {
		return nil, false
	}
	pe := &providers.Error{Op: op, Code: int(le.Code), Message: le.Message, Err: err}
	if isConflict(le) {
		pe.Err = conflictError{err}
	}
	return pe, true
}

func isConflict(le golibvirt.Error) bool {
	switch golibvirt.ErrorNumber(le.Code) {
	case golibvirt.ErrStorageVolExist:
		return true
	case golibvirt.ErrOperationFailed:
		// "pool 'x' already exists with uuid ...",
		// "Storage source conflict with pool: 'x'",
		// "domain 'x' already exists with uuid ...",
		// "network 'x' already exists with uuid ..."
		m := strings.ToLower(le.Message)
		return strings.Contains(m, "already exists") || strings.Contains(m, "conflict with pool")
	}
	return false
}

// hasCode reports whether err is libvirt's error with one of the codes.
func hasCode(err error, codes ...golibvirt.ErrorNumber) bool {
	var le golibvirt.Error
	if !errors.As(err, &le) {
		return false
	}
	for _, c := range codes {
		if golibvirt.ErrorNumber(le.Code) == c {
			return true
		}
	}
	return false
}

// hasMessage reports whether err is a libvirt error whose message contains s.
func hasMessage(err error, s string) bool {
	var le golibvirt.Error
	return errors.As(err, &le) && strings.Contains(le.Message, s)
}

// isOutcomeUnknown reports whether err leaves a call's outcome in doubt.
func isOutcomeUnknown(err error) bool { return errors.Is(err, providers.ErrOutcomeUnknown) }

// notFound reports libvirt's "no such pool", "no such volume", "no such
// network" or "no such domain".
func notFound(err error) bool {
	return hasCode(err, golibvirt.ErrNoStoragePool, golibvirt.ErrNoStorageVol, golibvirt.ErrNoNetwork, golibvirt.ErrNoDomain)
}

// notActive reports libvirt's refusal to stop an object that is not running.
func notActive(err error) bool { return hasCode(err, golibvirt.ErrOperationInvalid) }

// asLibvirtErr returns libvirt's error inside err (the zero Error if none).
func asLibvirtErr(err error) golibvirt.Error {
	var le golibvirt.Error
	errors.As(err, &le)
	return le
}
