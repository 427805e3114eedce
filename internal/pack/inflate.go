package pack

import (
	"bufio"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"sync"
)

// zlib readers and their input buffers are reused: each holds a 32 KiB
// window and tables that would otherwise be allocated per object.
var (
	zlibPool  sync.Pool // io.ReadCloser implementing zlib.Resetter
	bufioPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}
)

// inflater is one entry's zlib stream. It returns exactly the bytes the
// header promised, then io.EOF; a stream that is shorter or longer than
// its header says is an error.
type inflater struct {
	br   *bufio.Reader
	zr   io.ReadCloser
	left int64 // bytes the header promised that are not read yet
	name string
	err  error
}

func (p *Pack) inflate(h header) (*inflater, error) {
	br := bufioPool.Get().(*bufio.Reader)
	br.Reset(io.NewSectionReader(p.f, h.dataOff, 1<<62))
	var zr io.ReadCloser
	var err error
	if z, ok := zlibPool.Get().(io.ReadCloser); ok {
		err = z.(zlib.Resetter).Reset(br, nil)
		zr = z
	} else {
		zr, err = zlib.NewReader(br)
	}
	if err != nil {
		bufioPool.Put(br)
		return nil, fmt.Errorf("pack %s at %d: %w", p.name, h.dataOff, err)
	}
	return &inflater{br: br, zr: zr, left: h.size, name: p.name}, nil
}

func (in *inflater) Read(b []byte) (int, error) {
	if in.err != nil {
		return 0, in.err
	}
	if in.left == 0 {
		// The stream must end here: one more byte is corruption.
		var one [1]byte
		n, err := in.zr.Read(one[:])
		if n > 0 {
			in.err = fmt.Errorf("pack %s: object longer than its header says", in.name)
			return 0, in.err
		}
		if err != nil && err != io.EOF {
			in.err = fmt.Errorf("pack %s: %w", in.name, err)
			return 0, in.err
		}
		in.err = io.EOF
		return 0, io.EOF
	}
	if int64(len(b)) > in.left {
		b = b[:in.left]
	}
	n, err := in.zr.Read(b)
	in.left -= int64(n)
	if err == io.EOF {
		if in.left > 0 {
			in.err = fmt.Errorf("pack %s: object shorter than its header says: %w", in.name, io.ErrUnexpectedEOF)
			return n, in.err
		}
		err = nil
	} else if err != nil {
		in.err = fmt.Errorf("pack %s: %w", in.name, err)
		return n, in.err
	}
	return n, err
}

// Close returns the zlib state to the pools; it may be called mid-stream.
func (in *inflater) Close() error {
	if in.zr != nil {
		zlibPool.Put(in.zr)
		bufioPool.Put(in.br)
		in.zr, in.br = nil, nil
	}
	if in.err == nil {
		in.err = errors.New("read after close")
	}
	return nil
}

// inflateAll inflates the entry whole, checking that its stream ends
// where its header says.
func (p *Pack) inflateAll(h header) ([]byte, error) {
	in, err := p.inflate(h)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	buf := make([]byte, h.size)
	if _, err := io.ReadFull(in, buf); err != nil {
		return nil, err
	}
	// Reach the end of the stream, so a longer one is caught.
	if n, err := in.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = fmt.Errorf("pack %s: object longer than its header says", p.name)
		}
		return nil, err
	}
	return buf, nil
}

// deltaTargetSize reads the size of the object a delta entry builds: the
// second varint of the delta, after the base's size. Only those few bytes
// are inflated.
func (p *Pack) deltaTargetSize(h header) (int64, error) {
	in, err := p.inflate(h)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	var buf [2 * maxVarint]byte
	n, err := io.ReadFull(in, buf[:min(int64(len(buf)), h.size)])
	if err != nil {
		return 0, err
	}
	b := buf[:n]
	if _, k, ok := varint(b); ok {
		if size, _, ok := varint(b[k:]); ok {
			return size, nil
		}
	}
	return 0, fmt.Errorf("pack %s at %d: malformed delta header", p.name, h.dataOff)
}

// maxVarint bounds a delta header's varint: sizes fit in 63 bits.
const maxVarint = 10

// varint decodes a delta header's little-endian base-128 size, returning
// it and the bytes it took.
func varint(b []byte) (int64, int, bool) {
	var v uint64
	for i := 0; i < len(b) && i < maxVarint; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 1<<62 {
				return 0, 0, false
			}
			return int64(v), i + 1, true
		}
	}
	return 0, 0, false
}
