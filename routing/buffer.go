package routing

import "sync"

// Room kept around a payload so that the layers below can frame it in place.
const (
	// Headroom holds, in front of a payload, the route headers and counters of two nested
	// secure-channel layers and the transport's frame length. Headers that do not fit move the
	// payload once (a slow path, counted by nothing, correct always).
	Headroom = 512
	// Tailroom holds the authentication tags of two channel layers behind a payload.
	Tailroom = 64
)

// Buffer classes by data capacity. The largest bounds a transport frame.
var classes = [...]int{2 << 10, 16 << 10, 64<<10 + 1<<10, 256<<10 + 1<<10}

// MaxBufferData is the largest data size a Buffer can hold.
var MaxBufferData = classes[len(classes)-1]

// Each class keeps up to keptBytes of free buffers in a list the garbage collector leaves
// alone, in front of a sync.Pool that it empties: a steady stream reuses the same buffers
// and allocates nothing, and memory that a burst needed goes back to the heap.
const keptBytes = 8 << 20

var (
	kept  [len(classes)]chan *Buffer
	pools [len(classes)]sync.Pool
)

func init() {
	for i, c := range classes {
		kept[i] = make(chan *Buffer, keptBytes/c)
	}
}

// Buffer is a pooled byte buffer with headroom and tailroom. Its data is Bytes(); Prepend
// and Extend grow it at either end in place. A Buffer has one owner at a time; whoever holds
// it last calls Release.
type Buffer struct {
	data       []byte
	start, end int
	class      int8 // index into classes; -1 for a buffer too big for any class
}

// NewBuffer returns an empty buffer able to hold n data bytes (plus head- and tailroom),
// positioned so that Prepend has Headroom bytes before the data.
func NewBuffer(n int) *Buffer {
	for i, c := range classes {
		if n <= c {
			var b *Buffer
			select {
			case b = <-kept[i]:
			default:
				b, _ = pools[i].Get().(*Buffer)
			}
			if b == nil {
				b = &Buffer{data: make([]byte, Headroom+c+Tailroom), class: int8(i)}
			}
			b.start, b.end = Headroom, Headroom
			return b
		}
	}
	return &Buffer{data: make([]byte, Headroom+n+Tailroom), start: Headroom, end: Headroom, class: -1}
}

// Release returns b to its pool. b must not be used afterwards.
func (b *Buffer) Release() {
	if b == nil || b.class < 0 {
		return
	}
	select {
	case kept[b.class] <- b:
	default:
		pools[b.class].Put(b)
	}
}

// Bytes returns the data. It aliases the buffer.
func (b *Buffer) Bytes() []byte { return b.data[b.start:b.end] }

// Len returns the data length.
func (b *Buffer) Len() int { return b.end - b.start }

// Reset empties the data and restores the full headroom.
func (b *Buffer) Reset() { b.start, b.end = Headroom, Headroom }

// Available returns the space after the data that Extend can hand out, minus the tailroom;
// a reader fills it and then calls Extend with the count read.
func (b *Buffer) Available() []byte { return b.data[b.end : len(b.data)-Tailroom] }

// Extend grows the data by n bytes at the end and returns them. It may eat into the tailroom
// (which is what sealing does with a tag); it panics past the end of the buffer.
func (b *Buffer) Extend(n int) []byte {
	if b.end+n > len(b.data) {
		b.grow(n)
	}
	b.end += n
	return b.data[b.end-n : b.end]
}

// Prepend grows the data by n bytes at the front and returns them.
func (b *Buffer) Prepend(n int) []byte {
	if n > b.start {
		b.makeHeadroom(n)
	}
	b.start -= n
	return b.data[b.start : b.start+n]
}

// Advance drops n bytes from the front of the data (a consumed header).
func (b *Buffer) Advance(n int) { b.start += n }

// Truncate keeps the first n data bytes.
func (b *Buffer) Truncate(n int) { b.end = b.start + n }

// SetBytes copies p into the buffer as its whole data.
func (b *Buffer) SetBytes(p []byte) {
	b.Reset()
	copy(b.Extend(len(p)), p)
}

// makeHeadroom moves the data so that n bytes (and the usual headroom) fit in front of it,
// into a larger buffer if needed. Slow path.
func (b *Buffer) makeHeadroom(n int) {
	need := n + Headroom + b.Len() + Tailroom
	if need > len(b.data) {
		b.realloc(need)
		return
	}
	l := b.Len()
	copy(b.data[n+Headroom:], b.data[b.start:b.end])
	b.start, b.end = n+Headroom, n+Headroom+l
}

func (b *Buffer) grow(n int) {
	b.realloc(b.start + b.Len() + n + Tailroom)
}

// realloc moves the data into fresh memory of at least size bytes with full headroom.
func (b *Buffer) realloc(size int) {
	if size < len(b.data)*2 {
		size = len(b.data) * 2
	}
	data := make([]byte, size+Headroom)
	l := copy(data[2*Headroom:], b.data[b.start:b.end])
	if b.class >= 0 { // the old memory goes back to its pool; b itself keeps its identity
		pools[b.class].Put(&Buffer{data: b.data, class: b.class})
	}
	*b = Buffer{data: data, start: 2 * Headroom, end: 2*Headroom + l, class: -1}
}
