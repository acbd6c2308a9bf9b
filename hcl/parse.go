package hcl

import (
	"bytes"
	"runtime"
	"sync"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// chunkSize is the size above which a file is parsed in pieces, in
// parallel: HCL's lexer holds every token of a file at once, so a 4 MB
// file of 50,000 resources would otherwise cost hundreds of MB.
const chunkSize = 256 << 10

// parseFile parses one file into the bodies of its pieces. A big file is
// cut where a top-level block starts (a line at column 0 after a line that
// is just "}"), each piece parsed with its true start position, so ranges
// and diagnostics are exactly those of a whole-file parse. If any piece has
// errors (a cut inside a heredoc or comment, or a real mistake) the whole
// file is parsed again in one piece, so diagnostics are always HCL's own.
func parseFile(src []byte, name string) ([]hcl2.Body, hcl2.Diagnostics) {
	cuts := cutPoints(src)
	if len(cuts) == 0 {
		return parseWhole(src, name)
	}
	starts := append([]hcl2.Pos{hcl2.InitialPos}, cuts...)
	bodies := make([]hcl2.Body, len(starts))
	diags := make([]hcl2.Diagnostics, len(starts))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, start := range starts {
		end := len(src)
		if i+1 < len(starts) {
			end = starts[i+1].Byte
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f, d := hclsyntax.ParseConfig(src[start.Byte:end], name, start)
			diags[i] = d
			if f != nil {
				bodies[i] = f.Body
			}
		}()
	}
	wg.Wait()
	var all hcl2.Diagnostics
	for _, d := range diags {
		if d.HasErrors() {
			return parseWhole(src, name)
		}
		all = append(all, d...)
	}
	return bodies, all
}

func parseWhole(src []byte, name string) ([]hcl2.Body, hcl2.Diagnostics) {
	f, diags := hclsyntax.ParseConfig(src, name, hcl2.InitialPos)
	if f == nil {
		return nil, diags
	}
	return []hcl2.Body{f.Body}, diags
}

// cutPoints lists where to cut a big file: starts of top-level blocks, at
// least chunkSize apart. None for a small file.
func cutPoints(src []byte) []hcl2.Pos {
	if len(src) < 2*chunkSize {
		return nil
	}
	var cuts []hcl2.Pos
	last, line, off := 0, 1, 0
	prevClose := false
	for off < len(src) {
		end := bytes.IndexByte(src[off:], '\n')
		next := len(src)
		if end >= 0 {
			next = off + end + 1
		}
		l := bytes.TrimRight(src[off:next], " \t\r\n")
		if prevClose && len(l) > 0 && isIdentStart(l[0]) && off-last >= chunkSize && len(src)-off >= chunkSize/2 {
			cuts = append(cuts, hcl2.Pos{Line: line, Column: 1, Byte: off})
			last = off
		}
		if len(l) > 0 {
			prevClose = len(l) == 1 && l[0] == '}'
		}
		off = next
		line++
	}
	return cuts
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}
