package state

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Documents are small records the server keeps beside the entities (runs,
// their uploaded configuration): opaque bytes under collection/id, written
// through raft like everything else but not part of any stack, revision or
// lock. A write is last-writer-wins; callers that need more serialise
// themselves (the leader is the only writer of runs).

type docCmd struct {
	Key    string `json:"key"`
	Delete bool   `json:"delete,omitempty"`
	value  []byte
}

func (c *docCmd) payload() []byte     { return c.value }
func (c *docCmd) setPayload(b []byte) { c.value = b }

func docKey(collection, id string) []byte { return []byte(prefixDoc + collection + "/" + id) }

// MaxDocBytes is the most one document may hold: it must fit a raft entry.
const MaxDocBytes = chunkTarget

// PutDoc writes a document.
func (s *Store) PutDoc(ctx context.Context, collection, id string, value []byte) error {
	if err := checkDocName(collection, id); err != nil {
		return err
	}
	if len(value) > MaxDocBytes {
		return fmt.Errorf("write %s/%s: %d bytes, over the %d byte limit of a document", collection, id, len(value), MaxDocBytes)
	}
	if _, err := s.run(ctx, cmdDoc, &docCmd{Key: string(docKey(collection, id)), value: value}); err != nil {
		return fmt.Errorf("write %s/%s: %w", collection, id, err)
	}
	return nil
}

// DeleteDoc deletes a document; a missing one is no error.
func (s *Store) DeleteDoc(ctx context.Context, collection, id string) error {
	if err := checkDocName(collection, id); err != nil {
		return err
	}
	if _, err := s.run(ctx, cmdDoc, &docCmd{Key: string(docKey(collection, id)), Delete: true}); err != nil {
		return fmt.Errorf("delete %s/%s: %w", collection, id, err)
	}
	return nil
}

// GetDoc reads a document, or an error wrapping ErrNotFound.
func (s *Store) GetDoc(ctx context.Context, collection, id string) ([]byte, error) {
	var out []byte
	err := s.read(ctx, func(txn *badger.Txn) error {
		item, err := txn.Get(docKey(collection, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", collection, id, err)
	}
	return out, nil
}

// ListDocs calls fn for every document of collection whose id starts with
// prefix, in id order.
func (s *Store) ListDocs(ctx context.Context, collection, prefix string, fn func(id string, value []byte) error) error {
	p := docKey(collection, prefix)
	strip := len(docKey(collection, ""))
	err := s.read(ctx, func(txn *badger.Txn) error {
		return scan(txn, p, func(key, val []byte) error { return fn(string(key[strip:]), val) })
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", collection, err)
	}
	return nil
}

func checkDocName(collection, id string) error {
	if collection == "" || strings.ContainsAny(collection, "/\x00") {
		return fmt.Errorf("document collection %q is empty or contains '/' or NUL", collection)
	}
	if id == "" || strings.ContainsRune(id, 0) {
		return fmt.Errorf("document id %q is empty or contains NUL", id)
	}
	return nil
}

func (f *fsm) applyDoc(index uint64, c *docCmd) (*result, error) {
	if !strings.HasPrefix(c.Key, prefixDoc) {
		return f.refuse(index, fmt.Errorf("document key %q is outside the documents", c.Key))
	}
	err := f.db.Update(func(txn *badger.Txn) error {
		var err error
		if c.Delete {
			err = txn.Delete([]byte(c.Key))
		} else {
			err = txn.Set([]byte(c.Key), c.value)
		}
		if err != nil {
			return err
		}
		return setApplied(txn, index)
	})
	return &result{}, err
}
