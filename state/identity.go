package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Identity is made once per store, by the first Open, and replicated like
// any other write: every node of a cluster has the same.
type Identity struct {
	// ID names the store; saved plans carry it and apply refuses a plan
	// made against another store.
	ID string `json:"id"`
	// PlanKey signs saved plans (HMAC-SHA256): only someone who can read
	// the store can make a plan file that apply accepts. Never shown.
	PlanKey []byte `json:"plan_key"`
}

type initCmd struct {
	Identity Identity `json:"identity"`
}

// Identity returns the store's identity.
func (s *Store) Identity(ctx context.Context) (Identity, error) {
	var id Identity
	err := s.read(ctx, func(txn *badger.Txn) error {
		found, err := getJSON(txn, []byte(keyIdentity), &id)
		if err == nil && !found {
			err = errors.New("the store has no identity yet")
		}
		return err
	})
	if err != nil {
		return Identity{}, fmt.Errorf("read store identity: %w", err)
	}
	return id, nil
}

// ensureIdentity gives a new store its identity. The FSM keeps the first
// one it applies, so concurrent first opens (or cluster nodes) agree.
func (s *Store) ensureIdentity(ctx context.Context) error {
	if _, err := s.Identity(ctx); err == nil {
		return nil
	}
	id := Identity{PlanKey: make([]byte, 32)}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("make store identity: %w", err)
	}
	if _, err := rand.Read(id.PlanKey); err != nil {
		return fmt.Errorf("make store identity: %w", err)
	}
	id.ID = hex.EncodeToString(raw)
	if _, err := s.run(ctx, cmdInit, &initCmd{Identity: id}); err != nil {
		return fmt.Errorf("make store identity: %w", err)
	}
	return nil
}

func (f *fsm) applyInit(index uint64, c *initCmd) (*result, error) {
	err := f.db.Update(func(txn *badger.Txn) error {
		var have Identity
		found, err := getJSON(txn, []byte(keyIdentity), &have)
		if err != nil {
			return err
		}
		if !found {
			if err := setJSON(txn, []byte(keyIdentity), c.Identity); err != nil {
				return err
			}
		}
		return setApplied(txn, index)
	})
	if err != nil {
		return nil, err
	}
	return &result{}, nil
}

// StackExists reports whether anything was ever planned into the stack's
// store records: an entity, a revision of its history, or a lock (every
// apply, even one rolled back, takes the stack's lock).
func (s *Store) StackExists(ctx context.Context, stack string) (bool, error) {
	found := false
	err := s.read(ctx, func(txn *badger.Txn) error {
		if _, err := txn.Get(lockKey(stack)); err == nil {
			found = true
			return nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: entityPrefix(stack)})
		defer it.Close()
		it.Rewind()
		found = it.Valid()
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("read stack %s: %w", stack, err)
	}
	return found, nil
}
