package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// A chunk is part of a commit's content in a compact binary form, a
// sequence of records:
//
//	'p' uvarint(len(addr)) addr uvarint(len(json)) json   put an entity
//	'd' uvarint(len(addr)) addr                           delete an entity
//	'x' uvarint(len(addr)) addr uvarint(rev)              expect a revision
//
// A commit that fits one raft entry carries its only chunk inline; a bigger
// one stages its chunks first. The FSM copies entity JSON from a chunk to
// Badger without parsing it.
const (
	recPut    = 'p'
	recDelete = 'd'
	recExpect = 'x'
)

// chunkVisitor receives a chunk's records; slices alias the chunk.
type chunkVisitor struct {
	put    func(addr string, entity []byte) error
	delete func(addr string) error
	expect func(addr string, rev uint64) error
}

func walkChunk(b []byte, v chunkVisitor) error {
	for len(b) > 0 {
		tag := b[0]
		b = b[1:]
		addr, rest, err := readBytes(b)
		if err != nil {
			return err
		}
		b = rest
		switch tag {
		case recPut:
			var entity []byte
			if entity, b, err = readBytes(b); err != nil {
				return err
			}
			if v.put != nil {
				err = v.put(string(addr), entity)
			}
		case recDelete:
			if v.delete != nil {
				err = v.delete(string(addr))
			}
		case recExpect:
			rev, w := binary.Uvarint(b)
			if w <= 0 {
				return errors.New("bad chunk: revision")
			}
			b = b[w:]
			if v.expect != nil {
				err = v.expect(string(addr), rev)
			}
		default:
			return fmt.Errorf("bad chunk: record tag %q", tag)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func readBytes(b []byte) (field, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return nil, nil, errors.New("bad chunk: length")
	}
	return b[w : w+int(n)], b[w+int(n):], nil
}

// chunkWriter packs records into chunks of at most chunkTarget bytes.
type chunkWriter struct {
	done [][]byte
	cur  []byte
}

func (w *chunkWriter) add(tag byte, addr string, entity []byte, rev uint64) {
	size := 1 + 2*binary.MaxVarintLen64 + len(addr) + len(entity)
	if len(w.cur) > 0 && len(w.cur)+size > chunkTarget {
		w.done, w.cur = append(w.done, w.cur), nil
	}
	if w.cur == nil {
		w.cur = make([]byte, 0, max(size, 16<<10))
	}
	w.cur = append(w.cur, tag)
	w.cur = binary.AppendUvarint(w.cur, uint64(len(addr)))
	w.cur = append(w.cur, addr...)
	switch tag {
	case recPut:
		w.cur = binary.AppendUvarint(w.cur, uint64(len(entity)))
		w.cur = append(w.cur, entity...)
	case recExpect:
		w.cur = binary.AppendUvarint(w.cur, rev)
	}
}

// chunks returns the packed chunks, always at least one.
func (w *chunkWriter) chunks() [][]byte {
	return append(w.done, w.cur)
}

// An entity's Badger value is its revision (8 bytes, big-endian) followed by
// its JSON as the client encoded it. The revision lives outside the JSON so
// the FSM can set it and compare it without decoding entities.
func entityValue(rev uint64, entity []byte) []byte {
	v := make([]byte, 8, 8+len(entity))
	binary.BigEndian.PutUint64(v, rev)
	return append(v, entity...)
}

func valueRevision(val []byte) (uint64, error) {
	if len(val) < 8 {
		return 0, errors.New("entity value too short")
	}
	return binary.BigEndian.Uint64(val), nil
}

func decodeEntity(val []byte) (Entity, error) {
	rev, err := valueRevision(val)
	if err != nil {
		return Entity{}, err
	}
	var e Entity
	if err := json.Unmarshal(val[8:], &e); err != nil {
		return Entity{}, fmt.Errorf("decode entity: %w", err)
	}
	e.Revision = rev
	return e, nil
}
