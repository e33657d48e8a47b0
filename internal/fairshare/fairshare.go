package fairshare

// Table holds places of type V by origin K, oldest first, under a cap per origin and a
// cap in all. It is not safe for concurrent use: its caller holds a lock.
type Table[K comparable, V comparable] struct {
	perOrigin, total int
	held             map[K][]V // oldest first; no empty entries
	n                int
}

// New returns an empty table with at most perOrigin places for one origin and total in
// all; caps below 1 count as 1.
func New[K comparable, V comparable](perOrigin, total int) *Table[K, V] {
	return &Table[K, V]{perOrigin: max(1, perOrigin), total: max(1, total), held: make(map[K][]V)}
}

// Len returns the places held in all.
func (t *Table[K, V]) Len() int { return t.n }

// Origins returns the number of origins holding a place.
func (t *Table[K, V]) Origins() int { return len(t.held) }

// Held returns o's places, oldest first. The slice is the table's: do not change it, and
// read it before the next Add or Remove.
func (t *Table[K, V]) Held(o K) []V { return t.held[o] }

// Giver names the origin that must give up a place before o takes one more, if one must:
// o itself when it holds its cap, or when the table is full and o holds as many as any
// other origin; else, when the table is full, an origin holding the most. ok is false when
// there is room for o.
func (t *Table[K, V]) Giver(o K) (from K, ok bool) {
	from, most := o, len(t.held[o])
	if most < t.perOrigin {
		if t.n < t.total {
			return from, false
		}
		for k, vs := range t.held {
			if len(vs) > most {
				from, most = k, len(vs)
			}
		}
	}
	return from, most > 0
}

// Add gives v a place of o. It does not check the caps: the caller asked Giver first and
// made room.
func (t *Table[K, V]) Add(o K, v V) {
	t.held[o] = append(t.held[o], v)
	t.n++
}

// Remove gives back v's place of o, and reports whether v held one.
func (t *Table[K, V]) Remove(o K, v V) bool {
	vs := t.held[o]
	for i, x := range vs {
		if x != v {
			continue
		}
		if len(vs) == 1 {
			delete(t.held, o)
		} else {
			t.held[o] = append(vs[:i:i], vs[i+1:]...)
		}
		t.n--
		return true
	}
	return false
}
