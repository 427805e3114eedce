package gitattr

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// git re-encodes with iconv(3), which on Linux is glibc's; the names it
// accepts and the bytes it writes are glibc's, which differ from the
// IANA/WHATWG conventions x/text's indexes follow (glibc's "UTF-16"
// writes a byte-order mark and then the host's byte order, little-endian
// on amd64 and arm64; x/text's IANA "UTF-16" is big-endian). So the
// names are glibc's, looked up here, and each maps to an encoder whose
// output the tests compare with glibc's for every code point. The
// Unicode encodings are written here; the single-byte tables come from
// golang.org/x/text, patched where glibc's differ.

var (
	errUnknownEncoding = errors.New("encoding not supported by gitattr")
	errNotUTF8         = errors.New("content is not valid UTF-8")
	errUnrepresentable = errors.New("a character cannot be represented")
)

// wtEncoding is one working-tree-encoding.
type wtEncoding struct {
	name   string // canonical, for messages
	encode func(utf8 []byte) ([]byte, error)
}

// sameUTFEncoding is utf8.c's same_utf_encoding: "UTF-8", "utf8" and
// "Utf-8" name one encoding.
func sameUTFEncoding(a, b string) bool {
	if len(a) < 3 || len(b) < 3 || !strings.EqualFold(a[:3], "utf") || !strings.EqualFold(b[:3], "utf") {
		return false
	}
	a, b = strings.TrimPrefix(a[3:], "-"), strings.TrimPrefix(b[3:], "-")
	return strings.EqualFold(a, b)
}

// sameEncoding is utf8.c's same_encoding.
func sameEncoding(a, b string) bool {
	return sameUTFEncoding(a, b) || strings.EqualFold(a, b)
}

var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// lookupEncoding returns the encoding git would write for a
// working-tree-encoding value, or nil if this package does not know it.
func lookupEncoding(name string) *wtEncoding {
	// utf8.c's reencode_string_len: two names git handles itself.
	if sameUTFEncoding("UTF-16LE-BOM", name) {
		return unicodeEncoding("UTF-16LE-BOM", false, true, 16, false)
	}
	if sameUTFEncoding("UTF-16BE-BOM", name) {
		return unicodeEncoding("UTF-16BE-BOM", true, true, 16, false)
	}
	// glibc's iconv_open ignores case.
	all := encodings()
	if e, ok := all[strings.ToUpper(name)]; ok {
		return e
	}
	// utf8.c's fallback_encoding, used when iconv does not know a name.
	if strings.EqualFold(name, "latin-1") {
		return all["ISO-8859-1"]
	}
	return nil
}

// encodings maps each name to its encoding, built on first use: the
// tables cost a millisecond and a third of a megabyte, which every gitfs
// command would pay at start for the few trees that name an encoding.
var encodings = sync.OnceValue(func() map[string]*wtEncoding {
	all := map[string]*wtEncoding{}
	registerEncodings(func(e *wtEncoding, names ...string) {
		for _, n := range names {
			all[n] = e
		}
	})
	return all
})

func registerEncodings(register func(e *wtEncoding, names ...string)) {
	be := !nativeLittleEndian
	// glibc: UTF-16 and UTF-32 write a byte-order mark and then the
	// host's order; UCS-2 the host's order and no mark (BMP only);
	// UNICODE a mark and the host's order (BMP only).
	register(unicodeEncoding("UTF-16", be, true, 16, false), "UTF-16", "UTF16")
	register(unicodeEncoding("UTF-16LE", false, false, 16, false), "UTF-16LE", "UTF16LE")
	register(unicodeEncoding("UTF-16BE", true, false, 16, false), "UTF-16BE", "UTF16BE")
	register(unicodeEncoding("UTF-32", be, true, 32, false), "UTF-32", "UTF32")
	register(unicodeEncoding("UTF-32LE", false, false, 32, false), "UTF-32LE", "UTF32LE")
	register(unicodeEncoding("UTF-32BE", true, false, 32, false), "UTF-32BE", "UTF32BE")
	register(unicodeEncoding("UCS-2", be, false, 16, true), "UCS-2", "UCS2")
	register(unicodeEncoding("UCS-2LE", false, false, 16, true), "UCS-2LE", "UNICODELITTLE")
	register(unicodeEncoding("UCS-2BE", true, false, 16, true), "UCS-2BE", "UNICODEBIG")
	register(unicodeEncoding("UNICODE", be, true, 16, true), "UNICODE")

	// glibc's tables, where they differ from x/text's (found by
	// TestEncodingTablesGlibc): the ISO 8859 parts 2 to 16 carry the C1
	// controls at 0x80-0x9F; KOI8-U, the Mac tables and IBM1140 are
	// older or newer revisions in a few places.
	c1 := map[byte]rune{}
	for b := 0x80; b < 0xa0; b++ {
		c1[byte(b)] = rune(b)
	}
	for _, c := range []struct {
		m     *charmap.Charmap
		patch map[byte]rune // glibc's code point for a byte
		extra map[rune]byte // further code points glibc maps to a byte
		names []string
	}{
		{charmap.ISO8859_1, nil, nil, []string{"ISO-8859-1", "ISO8859-1", "ISO88591", "ISO_8859-1", "ISO_8859-1:1987", "LATIN1", "L1", "CP819", "IBM819", "ISO-IR-100", "CSISOLATIN1"}},
		{charmap.ISO8859_2, c1, nil, []string{"ISO-8859-2", "ISO8859-2", "ISO88592", "ISO_8859-2", "LATIN2", "L2"}},
		{charmap.ISO8859_3, c1, nil, []string{"ISO-8859-3", "ISO8859-3", "ISO88593", "ISO_8859-3", "LATIN3", "L3"}},
		{charmap.ISO8859_4, c1, nil, []string{"ISO-8859-4", "ISO8859-4", "ISO88594", "ISO_8859-4", "LATIN4", "L4"}},
		{charmap.ISO8859_5, c1, nil, []string{"ISO-8859-5", "ISO8859-5", "ISO88595", "ISO_8859-5"}},
		{charmap.ISO8859_6, c1, nil, []string{"ISO-8859-6", "ISO8859-6", "ISO88596", "ISO_8859-6"}},
		{charmap.ISO8859_7, c1, nil, []string{"ISO-8859-7", "ISO8859-7", "ISO88597", "ISO_8859-7"}},
		{charmap.ISO8859_8, c1, nil, []string{"ISO-8859-8", "ISO8859-8", "ISO88598", "ISO_8859-8"}},
		{charmap.ISO8859_9, nil, nil, []string{"ISO-8859-9", "ISO8859-9", "ISO88599", "ISO_8859-9", "LATIN5", "L5"}},
		{charmap.ISO8859_10, c1, nil, []string{"ISO-8859-10", "ISO8859-10", "ISO885910", "ISO_8859-10", "LATIN6", "L6"}},
		{charmap.ISO8859_13, c1, nil, []string{"ISO-8859-13", "ISO8859-13", "ISO885913", "LATIN7", "L7"}},
		{charmap.ISO8859_14, c1, nil, []string{"ISO-8859-14", "ISO8859-14", "ISO885914", "ISO_8859-14", "LATIN8", "L8"}},
		{charmap.ISO8859_15, c1, nil, []string{"ISO-8859-15", "ISO8859-15", "ISO885915", "ISO_8859-15", "LATIN-9", "LATIN9"}},
		{charmap.ISO8859_16, c1, nil, []string{"ISO-8859-16", "ISO8859-16", "ISO885916", "ISO_8859-16", "LATIN10", "L10"}},
		{charmap.Windows1250, nil, nil, []string{"WINDOWS-1250", "CP1250", "MS-EE"}},
		{charmap.Windows1251, nil, nil, []string{"WINDOWS-1251", "CP1251", "MS-CYRL"}},
		{charmap.Windows1252, nil, nil, []string{"WINDOWS-1252", "CP1252", "MS-ANSI"}},
		{charmap.Windows1253, nil, nil, []string{"WINDOWS-1253", "CP1253", "MS-GREEK"}},
		{charmap.Windows1254, nil, nil, []string{"WINDOWS-1254", "CP1254", "MS-TURK"}},
		{charmap.Windows1256, nil, nil, []string{"WINDOWS-1256", "CP1256", "MS-ARAB"}},
		{charmap.Windows1257, nil, nil, []string{"WINDOWS-1257", "CP1257"}},
		{charmap.Windows874, nil, nil, []string{"WINDOWS-874", "CP874"}},
		{charmap.KOI8R, nil, nil, []string{"KOI8-R", "KOI8R"}},
		{charmap.KOI8U, map[byte]rune{0xae: 0x255d, 0xbe: 0x256c}, nil, []string{"KOI8-U", "KOI8U"}},
		{charmap.CodePage437, nil, nil, []string{"CP437", "IBM437"}},
		{charmap.CodePage850, nil, nil, []string{"CP850", "IBM850"}},
		{charmap.CodePage852, nil, nil, []string{"CP852", "IBM852"}},
		{charmap.CodePage855, nil, nil, []string{"CP855", "IBM855"}},
		{charmap.CodePage858, nil, nil, []string{"CP858", "IBM858"}},
		{charmap.CodePage860, nil, nil, []string{"CP860", "IBM860"}},
		{charmap.CodePage862, nil, nil, []string{"CP862", "IBM862"}},
		{charmap.CodePage863, nil, nil, []string{"CP863", "IBM863"}},
		{charmap.CodePage865, nil, nil, []string{"CP865", "IBM865"}},
		{charmap.CodePage866, nil, nil, []string{"CP866", "IBM866"}},
		{charmap.CodePage037, nil, nil, []string{"CP037", "IBM037"}},
		{charmap.CodePage1047, nil, nil, []string{"CP1047", "IBM1047"}},
		{charmap.CodePage1140, nil, map[rune]byte{0x203e: 0xbc}, []string{"CP1140", "IBM1140"}},
		{charmap.Macintosh, map[byte]rune{0xc6: 0x0394, 0xf0: 0xe01e}, nil, []string{"MACINTOSH", "MAC"}},
		{charmap.MacintoshCyrillic, map[byte]rune{0xff: 0x00a4}, nil, []string{"MAC-CYRILLIC", "MACCYRILLIC"}},
	} {
		register(charmapEncoding(c.names[0], c.m, c.patch, c.extra), c.names...)
	}
	// Not here, so Apply reports them: glibc's WINDOWS-1255 and -1258
	// decompose precomposed letters, and its CJK tables (Shift_JIS,
	// EUC-JP, EUC-KR, GBK, GB18030, Big5) differ from x/text's WHATWG
	// ones in hundreds to thousands of code points; stateful encodings
	// (ISO-2022-*, UTF-7) and UCS-4 (which glibc lets exceed U+10FFFF).
}

// unicodeEncoding writes UTF-16 or UTF-32 (bits), big-endian or not,
// with a byte-order mark or not; bmp refuses characters beyond U+FFFF
// (UCS-2).
func unicodeEncoding(name string, bigEndian, bom bool, bits int, bmp bool) *wtEncoding {
	var order binary.AppendByteOrder = binary.LittleEndian
	if bigEndian {
		order = binary.BigEndian
	}
	return &wtEncoding{name: name, encode: func(in []byte) ([]byte, error) {
		out := make([]byte, 0, 2*len(in)+4)
		put := func(u uint32) {
			if bits == 16 {
				out = order.AppendUint16(out, uint16(u))
			} else {
				out = order.AppendUint32(out, u)
			}
		}
		if bom {
			put(0xfeff)
		}
		for len(in) > 0 {
			r, n := utf8.DecodeRune(in)
			if r == utf8.RuneError && n <= 1 {
				return nil, errNotUTF8
			}
			in = in[n:]
			switch {
			case bits == 32 || r < 0x10000:
				put(uint32(r))
			case bmp:
				return nil, errUnrepresentable
			default:
				r -= 0x10000
				put(0xd800 + uint32(r>>10))
				put(0xdc00 + uint32(r&0x3ff))
			}
		}
		return out, nil
	}}
}

// charmapEncoding writes a single-byte encoding: x/text's table with
// glibc's differences patched in.
func charmapEncoding(name string, m *charmap.Charmap, patch map[byte]rune, extra map[rune]byte) *wtEncoding {
	table := map[rune]byte{}
	for b := 0; b < 256; b++ {
		r, ok := patch[byte(b)]
		if !ok {
			r = m.DecodeByte(byte(b))
		}
		if r == utf8.RuneError {
			continue // no character at this byte
		}
		if _, dup := table[r]; !dup {
			table[r] = byte(b)
		}
	}
	for r, b := range extra {
		table[r] = b
	}
	return &wtEncoding{name: name, encode: func(in []byte) ([]byte, error) {
		out := make([]byte, 0, len(in))
		for len(in) > 0 {
			r, n := utf8.DecodeRune(in)
			if r == utf8.RuneError && n <= 1 {
				return nil, errNotUTF8
			}
			in = in[n:]
			b, ok := table[r]
			if !ok {
				return nil, errUnrepresentable
			}
			out = append(out, b)
		}
		return out, nil
	}}
}
