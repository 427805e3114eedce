package pack

import (
	"math/rand"
	"testing"
)

func TestParseHeader(t *testing.T) {
	id := make([]byte, 20)
	id[0] = 0xab
	tests := []struct {
		name string
		b    []byte
		off  int64
		ok   bool
		want header
	}{
		{"blob of 5 bytes", []byte{0x35}, 100, true, header{typ: Blob, size: 5, dataOff: 101}},
		{"tree of 300 bytes", []byte{0xac, 0x12}, 100, true, header{typ: Tree, size: 12 | 0x12<<4, dataOff: 102}},
		{"ofs delta", []byte{0x63, 0x05}, 100, true, header{typ: OfsDelta, size: 3, baseOff: 95, dataOff: 102}},
		{"ofs delta, two-byte offset", []byte{0x63, 0x80, 0x00}, 1000, true, header{typ: OfsDelta, size: 3, baseOff: 1000 - 128, dataOff: 1003}},
		{"ref delta", append([]byte{0x73}, id...), 100, true, header{typ: RefDelta, size: 3, baseRef: [20]byte{0xab}, dataOff: 121}},
		{"empty", nil, 100, false, header{}},
		{"size runs off the end", []byte{0xb5, 0x80}, 100, false, header{}},
		{"size too long", []byte{0xb5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 100, false, header{}},
		{"type 0", []byte{0x05}, 100, false, header{}},
		{"type 5", []byte{0x55}, 100, false, header{}},
		{"ofs delta before the pack", []byte{0x63, 0x7f}, 100, false, header{}},
		{"ofs delta of itself", []byte{0x63, 0x00}, 100, false, header{}},
		{"ofs delta offset runs off the end", []byte{0x63, 0x80}, 1000, false, header{}},
		{"ref delta id cut", append([]byte{0x73}, id[:10]...), 100, false, header{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseHeader(tc.b, tc.off, "test")
			if (err == nil) != tc.ok {
				t.Fatalf("parseHeader: %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && h != tc.want {
				t.Fatalf("parseHeader = %+v, want %+v", h, tc.want)
			}
		})
	}
}

// TestParseHeaderNeverPanics feeds random bytes at random offsets.
func TestParseHeaderNeverPanics(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	b := make([]byte, maxHeader)
	for i := 0; i < 100000; i++ {
		rng.Read(b)
		h, err := parseHeader(b[:rng.Intn(len(b)+1)], rng.Int63n(1<<40), "test")
		if err == nil && (h.dataOff <= 0 || h.size < 0 || h.baseOff < 0) {
			t.Fatalf("accepted %x as %+v", b, h)
		}
	}
}

func TestVarint(t *testing.T) {
	tests := []struct {
		b    []byte
		v    int64
		n    int
		isOK bool
	}{
		{[]byte{0x05}, 5, 1, true},
		{[]byte{0x80, 0x01}, 128, 2, true},
		{[]byte{0xff, 0x7f, 0xaa}, 0x3fff, 2, true},
		{nil, 0, 0, false},
		{[]byte{0x80}, 0, 0, false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 0, 0, false},
	}
	for _, tc := range tests {
		v, n, ok := varint(tc.b)
		if v != tc.v || n != tc.n || ok != tc.isOK {
			t.Errorf("varint(%x) = %d, %d, %v; want %d, %d, %v", tc.b, v, n, ok, tc.v, tc.n, tc.isOK)
		}
	}
}
