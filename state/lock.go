package state

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Lock is a stack's apply lock: a lease with a fencing token. Every write an
// apply makes carries its Lock, and the store refuses it (ErrFenced) unless
// it is still the stack's current, unexpired lock. Token grows by one per
// acquisition of a stack's lock and is never reused, across restarts too.
type Lock struct {
	ID       string    `json:"id"`
	Stack    string    `json:"stack"`
	Holder   string    `json:"holder"`
	Token    uint64    `json:"token"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// ErrLocked matches (errors.Is) every *LockedError.
var ErrLocked = errors.New("stack is locked")

// ErrFenced is returned for a write whose lock is not the stack's current,
// unexpired lock: it expired, was force-unlocked, or another holder took it.
// The writer must stop; whatever it meant to write was not written.
var ErrFenced = errors.New("lock is no longer the stack's current lock (fenced)")

// LockedError is returned by Lock when the stack's lock is held and unexpired.
type LockedError struct {
	Lock Lock
}

func (e *LockedError) Error() string {
	l := e.Lock
	return fmt.Sprintf("stack %q is locked by %s (lock %s, since %s, expires %s); if that run is dead, release it with `fiat unlock %s`",
		l.Stack, l.Holder, l.ID, l.Acquired.Format(time.RFC3339), l.Expires.Format(time.RFC3339), l.ID)
}

func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// lockRecord is what l/<stack> holds. It stays after release so the next
// token continues from the last one.
type lockRecord struct {
	Lock Lock `json:"lock"`
	Held bool `json:"held"`
}

// Lock takes stack's apply lock for ttl. It fails with a *LockedError
// (wrapped) if another lock is held and unexpired; an expired lock is taken
// over with a new token.
func (s *Store) Lock(ctx context.Context, stack, holder string, ttl time.Duration) (Lock, error) {
	if err := checkName("stack", stack); err != nil {
		return Lock{}, fmt.Errorf("lock stack %s: %w", stack, err)
	}
	if holder == "" {
		return Lock{}, fmt.Errorf("lock stack %s: holder is empty", stack)
	}
	if ttl <= 0 {
		return Lock{}, fmt.Errorf("lock stack %s: ttl must be positive, got %s", stack, ttl)
	}
	res, err := s.run(ctx, cmdLock, &lockCmd{
		ID: newID(), Stack: stack, Holder: holder, TTL: int64(ttl), At: unixNano(s.now()),
	})
	if err != nil {
		return Lock{}, fmt.Errorf("lock stack %s: %w", stack, err)
	}
	return res.Lock, nil
}

// Renew extends a held lock's lease to ttl from now and returns the renewed
// lock. It fails with ErrFenced if lock is no longer current or has expired.
func (s *Store) Renew(ctx context.Context, lock Lock, ttl time.Duration) (Lock, error) {
	if ttl <= 0 {
		return Lock{}, fmt.Errorf("renew lock %s: ttl must be positive, got %s", lock.ID, ttl)
	}
	res, err := s.run(ctx, cmdRenew, &renewCmd{Lock: lock, TTL: int64(ttl), At: unixNano(s.now())})
	if err != nil {
		return Lock{}, fmt.Errorf("renew lock %s: %w", lock.ID, err)
	}
	return res.Lock, nil
}

// Unlock releases lock if it is still the stack's lock (expired or not).
// Releasing a lock twice is not an error; releasing a lock someone else has
// taken over fails with ErrFenced and leaves their lock alone.
func (s *Store) Unlock(ctx context.Context, lock Lock) error {
	if _, err := s.run(ctx, cmdUnlock, &unlockCmd{Lock: lock, At: unixNano(s.now())}); err != nil {
		return fmt.Errorf("unlock lock %s: %w", lock.ID, err)
	}
	return nil
}

// ForceUnlock releases whichever stack's lock has exactly this id and
// returns the lock it released. The exact id is required so an operator
// cannot break a lock other than the one they looked at.
func (s *Store) ForceUnlock(ctx context.Context, lockID string) (Lock, error) {
	res, err := s.run(ctx, cmdForceUnlock, &forceUnlockCmd{LockID: lockID, At: unixNano(s.now())})
	if err != nil {
		return Lock{}, fmt.Errorf("force unlock lock %s: %w", lockID, err)
	}
	return res.Lock, nil
}

// Locks returns every held lock, sorted by stack. Expired leases are
// included (compare Expires): they are held until taken over or released.
func (s *Store) Locks(ctx context.Context) ([]Lock, error) {
	var locks []Lock
	err := s.read(ctx, func(txn *badger.Txn) error {
		return scanJSON(txn, []byte(prefixLock), func(rec *lockRecord) {
			if rec.Held {
				locks = append(locks, rec.Lock)
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	sort.Slice(locks, func(i, j int) bool { return locks[i].Stack < locks[j].Stack })
	return locks, nil
}

// fence returns a refusal wrapping ErrFenced unless l is its stack's
// current lock and unexpired at time at (the command's clock). Safety
// against a new holder rests on ID and token, which the log orders: once a
// takeover is applied, every later entry of the old holder is refused
// whatever its clock says.
func fence(txn *badger.Txn, l Lock, at int64) (refusal, err error) {
	var rec lockRecord
	ok, err := getJSON(txn, lockKey(l.Stack), &rec)
	if err != nil {
		return nil, err
	}
	switch {
	case !ok || !rec.Held:
		return fmt.Errorf("%w: lock %s (token %d) on stack %q was released", ErrFenced, l.ID, l.Token, l.Stack), nil
	case rec.Lock.ID != l.ID || rec.Lock.Token != l.Token:
		return fmt.Errorf("%w: lock %s (token %d) on stack %q was taken over by %s (lock %s, token %d)",
			ErrFenced, l.ID, l.Token, l.Stack, rec.Lock.Holder, rec.Lock.ID, rec.Lock.Token), nil
	case at >= rec.Lock.Expires.UnixNano():
		return fmt.Errorf("%w: lock %s (token %d) on stack %q expired at %s",
			ErrFenced, l.ID, l.Token, l.Stack, rec.Lock.Expires.Format(time.RFC3339Nano)), nil
	}
	return nil, nil
}

func (f *fsm) applyLock(index uint64, c *lockCmd) (*result, error) {
	var rec lockRecord
	if err := f.db.View(func(txn *badger.Txn) error {
		_, err := getJSON(txn, lockKey(c.Stack), &rec)
		return err
	}); err != nil {
		return nil, err
	}
	if rec.Held && c.At < rec.Lock.Expires.UnixNano() {
		return f.refuse(index, &LockedError{Lock: rec.Lock})
	}
	if rec.Held {
		// Taking over an expired lease: chunks its holder staged for a
		// commit it never sent are garbage now.
		if err := f.deletePrefix(stagePrefixLock(rec.Lock.ID)); err != nil {
			return nil, err
		}
	}
	l := Lock{
		ID: c.ID, Stack: c.Stack, Holder: c.Holder,
		Token:    rec.Lock.Token + 1,
		Acquired: fromUnixNano(c.At),
		Expires:  fromUnixNano(c.At + c.TTL),
	}
	return f.putLock(index, l, true)
}

func (f *fsm) applyRenew(index uint64, c *renewCmd) (*result, error) {
	var refusal error
	if err := f.db.View(func(txn *badger.Txn) (err error) {
		refusal, err = fence(txn, c.Lock, c.At)
		return err
	}); err != nil {
		return nil, err
	}
	if refusal != nil {
		return f.refuse(index, refusal)
	}
	l := c.Lock
	l.Expires = fromUnixNano(c.At + c.TTL)
	return f.putLock(index, l, true)
}

func (f *fsm) applyUnlock(index uint64, c *unlockCmd) (*result, error) {
	var rec lockRecord
	if err := f.db.View(func(txn *badger.Txn) error {
		_, err := getJSON(txn, lockKey(c.Lock.Stack), &rec)
		return err
	}); err != nil {
		return nil, err
	}
	switch {
	case rec.Lock.ID != c.Lock.ID:
		return f.refuse(index, fmt.Errorf("%w: lock %s on stack %q is not held; the stack's lock is %s held by %s",
			ErrFenced, c.Lock.ID, c.Lock.Stack, rec.Lock.ID, rec.Lock.Holder))
	case !rec.Held:
		return f.refuse(index, nil) // already released
	}
	return f.release(index, rec.Lock)
}

func (f *fsm) applyForceUnlock(index uint64, c *forceUnlockCmd) (*result, error) {
	var found *Lock
	if err := f.db.View(func(txn *badger.Txn) error {
		return scanJSON(txn, []byte(prefixLock), func(rec *lockRecord) {
			if rec.Held && rec.Lock.ID == c.LockID {
				found = &rec.Lock
			}
		})
	}); err != nil {
		return nil, err
	}
	if found == nil {
		return f.refuse(index, fmt.Errorf("no held lock has id %q: %w", c.LockID, ErrNotFound))
	}
	return f.release(index, *found)
}

// release marks l released and drops anything it staged.
func (f *fsm) release(index uint64, l Lock) (*result, error) {
	if err := f.deletePrefix(stagePrefixLock(l.ID)); err != nil {
		return nil, err
	}
	return f.putLock(index, l, false)
}

func (f *fsm) putLock(index uint64, l Lock, held bool) (*result, error) {
	err := f.db.Update(func(txn *badger.Txn) error {
		if err := setJSON(txn, lockKey(l.Stack), lockRecord{Lock: l, Held: held}); err != nil {
			return err
		}
		return setApplied(txn, index)
	})
	if err != nil {
		return nil, err
	}
	return &result{Lock: l}, nil
}
