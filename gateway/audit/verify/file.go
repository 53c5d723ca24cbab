package verify

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxLineBytes is the longest line FileSource reads as a record. A
// BatchLookup of 1,000 IDs makes a line of about 70 KiB; anything longer
// than this is no record of the gateway and is skipped as a fragment.
const MaxLineBytes = 16 << 20

// FileSource reads the records of an audit file, one line each, without
// holding more than a line in memory.
type FileSource struct {
	r    *bufio.Reader
	line int
	buf  []byte
	max  int
}

// NewFileSource reads r.
func NewFileSource(r io.Reader) *FileSource { return newFileSource(r, 256<<10, MaxLineBytes) }

// newFileSource reads r through a buffer of bufSize bytes, skipping lines
// longer than max.
func newFileSource(r io.Reader, bufSize, max int) *FileSource {
	return &FileSource{r: bufio.NewReaderSize(r, bufSize), max: max}
}

// Next implements Source. Entries' Loc is "line N".
func (f *FileSource) Next() (Entry, error) {
	line, long, err := f.readLine()
	if err != nil {
		return Entry{}, err
	}
	f.line++
	loc := "line " + strconv.Itoa(f.line)
	if long > 0 {
		return Entry{Loc: loc, Fragment: true, Note: fmt.Sprintf("%d bytes, longer than any record", long)}, nil
	}
	kind, body, chain := ParseLine(line)
	if kind == Fragment {
		return Entry{Loc: loc, Fragment: true}, nil
	}
	return Entry{Body: body, Chain: chain, Loc: loc}, nil
}

// readLine returns the next line without its newline. A line longer than
// f.max is read through and dropped: long is then its length. io.EOF comes
// only when no byte is left; a last line without a newline is a line.
func (f *FileSource) readLine() (line []byte, long int, err error) {
	f.buf = f.buf[:0]
	n := 0
	for {
		chunk, err := f.r.ReadSlice('\n')
		n += len(chunk)
		if n <= f.max+1 {
			f.buf = append(f.buf, chunk...)
		}
		switch {
		case err == nil:
			if n > f.max+1 {
				return nil, n - 1, nil
			}
			return f.buf[:len(f.buf)-1], 0, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if n == 0 {
				return nil, 0, io.EOF
			}
			if n > f.max {
				return nil, n, nil
			}
			return f.buf, 0, nil
		default:
			return nil, 0, err
		}
	}
}
