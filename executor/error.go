package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"fiat/providers"
)

// Error is the one error an apply returns: what failed, where it is declared,
// what the provider said, and what was done about it.
type Error struct {
	Phase     string // "lock", "preflight", "apply", "commit"
	Address   string // the failed resource ("" when the failure is not one resource's)
	Source    string // file:line of its block
	Operation string // "create", "update", "retire", ...
	Cause     error
	// Problems are preflight findings, one per offending step.
	Problems []Problem
	// RolledBack lists the operations that were undone, in undo order.
	RolledBack []Undone
	// Stuck lists operations whose undo failed: those objects are left as
	// described and need attention.
	Stuck []Stuck
	// Recovered lists crashed runs' transactions settled before this one.
	Recovered []*Recovery
	// Left lists completed operations this run could not roll back itself
	// (it lost the stack lock); the journal keeps them for recovery.
	Left []Undone
	// Notes are problems of the rollback's own bookkeeping (journal, store).
	Notes []string
}

// Problem is one preflight finding.
type Problem struct {
	Address string `json:"address"`
	Source  string `json:"source,omitempty"`
	Message string `json:"message"`
}

// Undone is one operation that was rolled back.
type Undone struct {
	Address   string `json:"address"`
	Operation string `json:"operation"`
}

// Stuck is one operation whose undo failed.
type Stuck struct {
	Address   string `json:"address"`
	Source    string `json:"source,omitempty"`
	Operation string `json:"operation"`
	Err       string `json:"error"`
}

func (e *Error) Unwrap() error { return e.Cause }

func (e *Error) Error() string {
	b := &strings.Builder{}
	switch {
	case len(e.Problems) > 0:
		fmt.Fprintf(b, "preflight found %d problem(s); nothing was changed:", len(e.Problems))
		for _, p := range e.Problems {
			fmt.Fprintf(b, "\n  %s", p.Address)
			if p.Source != "" {
				fmt.Fprintf(b, " (%s)", p.Source)
			}
			fmt.Fprintf(b, ": %s", p.Message)
		}
	case e.Address != "":
		fmt.Fprintf(b, "%s %s", e.Operation, e.Address)
		if e.Source != "" {
			fmt.Fprintf(b, " (%s)", e.Source)
		}
		fmt.Fprintf(b, " failed: %v", e.Cause)
	default:
		fmt.Fprintf(b, "%s failed: %v", e.Phase, e.Cause)
	}
	if e.Phase == "apply" || e.Phase == "commit" {
		if len(e.RolledBack) == 0 && len(e.Stuck) == 0 && len(e.Left) == 0 {
			b.WriteString("\nNothing had been changed; nothing was committed.")
		}
		if len(e.RolledBack) > 0 {
			b.WriteString("\nRolled back:")
			for _, u := range e.RolledBack {
				fmt.Fprintf(b, "\n  %s: %s undone", u.Address, u.Operation)
			}
		}
		if len(e.Left) > 0 {
			b.WriteString("\nNOT rolled back by this run (the journal keeps them; the next `fiat apply`, `fiat plan` or `fiat recover` rolls them back):")
			for _, u := range e.Left {
				fmt.Fprintf(b, "\n  %s: %s", u.Address, u.Operation)
			}
		}
		if len(e.Stuck) > 0 {
			b.WriteString("\nCould NOT be rolled back (marked needs-attention in the store):")
			for _, s := range e.Stuck {
				fmt.Fprintf(b, "\n  %s", s.Address)
				if s.Source != "" {
					fmt.Fprintf(b, " (%s)", s.Source)
				}
				fmt.Fprintf(b, ": undo of %s failed: %s", s.Operation, s.Err)
			}
			b.WriteString("\nFix the cause and run `fiat recover` to finish the rollback, or `fiat state forget ADDRESS` to stop managing an object (it is left as it is). Plans that do not touch these still run.")
		}
		for _, n := range e.Notes {
			fmt.Fprintf(b, "\nNote: %s", n)
		}
		if len(e.RolledBack) > 0 && len(e.Stuck) == 0 && len(e.Left) == 0 && len(e.Notes) == 0 {
			b.WriteString("\nThe infrastructure and the store are as they were before this apply.")
		}
	}
	return b.String()
}

// MarshalJSON renders the error for machines.
func (e *Error) MarshalJSON() ([]byte, error) {
	type out struct {
		Phase      string    `json:"phase"`
		Address    string    `json:"address,omitempty"`
		Source     string    `json:"source,omitempty"`
		Operation  string    `json:"operation,omitempty"`
		Message    string    `json:"message"`
		Code       int       `json:"provider_code,omitempty"`
		Problems   []Problem `json:"problems,omitempty"`
		RolledBack []Undone  `json:"rolled_back"`
		Stuck      []Stuck   `json:"needs_attention"`
		Left       []Undone  `json:"left_for_recovery,omitempty"`
		Notes      []string  `json:"notes,omitempty"`
	}
	o := out{Phase: e.Phase, Address: e.Address, Source: e.Source, Operation: e.Operation,
		Problems: e.Problems, RolledBack: e.RolledBack, Stuck: e.Stuck, Left: e.Left, Notes: e.Notes}
	if o.RolledBack == nil {
		o.RolledBack = []Undone{}
	}
	if o.Stuck == nil {
		o.Stuck = []Stuck{}
	}
	if e.Cause != nil {
		o.Message = e.Cause.Error()
		var pe *providers.Error
		if errors.As(e.Cause, &pe) {
			o.Code = pe.Code
		}
	}
	return json.Marshal(o)
}
