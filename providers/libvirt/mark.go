package libvirt

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Marks: how fiat recognises, after a crash or a lost connection, what its
// own create made.
//
// Pools, networks and domains carry a UUID derived from the operation id.
// A volume has no UUID, and libvirt keeps nothing else for it that fiat
// could set and read back: a dir pool's volume XML is read from the file
// (name, sizes, format, permissions, timestamps). So on a host whose files
// the provider can see, the file carries the mark: an extended attribute
// (user.fiat.op) holding the operation's mark, set before the volume gets
// its name (see createVolumeWith). The directories a pool's create makes
// itself are marked the same way. On a remote host nothing can be marked,
// and a settle claims no volume (see createdVolume).

// markAttr is the extended attribute that holds an object's mark.
const markAttr = "user.fiat.op"

// opMark is the mark of one operation: derived from its id and address
// like the UUIDs (see newUUID), so a settle of the operation computes it
// again; random without an op id.
func opMark(opID, address string) string {
	if opID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	sum := sha256.Sum256([]byte("fiat\x00" + opID + "\x00" + address))
	return hex.EncodeToString(sum[:16])
}

// setMark marks the file or directory at path. It fails where the file
// system keeps no extended attributes; the object is then unmarked, as on
// a remote host.
func setMark(path, mark string) error {
	if err := syscall.Setxattr(path, markAttr, []byte(mark), 0); err != nil {
		return fmt.Errorf("mark %s: %w", path, err)
	}
	return nil
}

// hasMark reports whether the file or directory at path carries mark.
func hasMark(path, mark string) bool {
	buf := make([]byte, 128)
	n, err := syscall.Getxattr(path, markAttr, buf)
	return err == nil && string(buf[:n]) == mark
}

// renameNoReplace renames from to to unless to exists (os.ErrExist then):
// a hard link fails atomically when to exists, and the old name goes after
// it. Where the file system has no hard links, a check and a rename do.
func renameNoReplace(from, to string) error {
	err := os.Link(from, to)
	switch {
	case errors.Is(err, os.ErrExist):
		return err
	case err != nil:
		if _, serr := os.Lstat(to); serr == nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: os.ErrExist}
		}
		return os.Rename(from, to)
	}
	return os.Remove(from)
}

// localFiles reports whether the provider reaches the host's files itself.
func (p *Provider) localFiles() bool { return p.conn.local() && !p.remoteFiles }
