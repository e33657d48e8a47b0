package fairshare

import (
	"testing"
	"testing/quick"
)

func TestGiver(t *testing.T) {
	// held is the places per origin before "new" asks; caps 3 per origin, 6 in all.
	tests := []struct {
		name   string
		held   map[string]int
		ask    string
		from   string
		mustGo bool
	}{
		{"room", map[string]int{"a": 2}, "b", "", false},
		{"own cap", map[string]int{"a": 3}, "a", "a", true},
		{"full, new origin", map[string]int{"a": 3, "b": 2, "c": 1}, "d", "a", true},
		{"full, holds fewer", map[string]int{"a": 3, "b": 2, "c": 1}, "c", "a", true},
		{"full, holds as many as any", map[string]int{"a": 2, "b": 2, "c": 2}, "b", "b", true},
		{"own cap before the most", map[string]int{"a": 3, "b": 3}, "b", "b", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := New[string, int](3, 6)
			for o, k := range tt.held {
				for i := range k {
					tab.Add(o, i)
				}
			}
			from, ok := tab.Giver(tt.ask)
			if ok != tt.mustGo || (ok && from != tt.from) {
				t.Errorf("Giver(%q) = %q, %v, want %q, %v", tt.ask, from, ok, tt.from, tt.mustGo)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	tab := New[string, int](4, 8)
	for i := range 3 {
		tab.Add("a", i)
	}
	if !tab.Remove("a", 1) || tab.Remove("a", 1) || tab.Remove("b", 0) {
		t.Fatal("Remove reported a place it did not give back, or the other way round")
	}
	if got := tab.Held("a"); len(got) != 2 || got[0] != 0 || got[1] != 2 {
		t.Errorf("Held(a) = %v, want [0 2] (oldest first)", got)
	}
	tab.Remove("a", 0)
	tab.Remove("a", 2)
	if tab.Len() != 0 || tab.Origins() != 0 {
		t.Errorf("Len, Origins = %d, %d after removing all, want 0, 0", tab.Len(), tab.Origins())
	}
}

// TestFairShareProperty runs random sequences of arrivals and departures through the rule
// as its callers apply it (the giver's oldest place goes) and checks after each step that
// the caps hold, that an origin holding nothing always got in, and that a place was taken
// only from the arriving origin or from one holding the most.
func TestFairShareProperty(t *testing.T) {
	prop := func(perOrigin, total uint8, ops []uint16) bool {
		per, all := int(perOrigin%6)+1, int(total%20)+1
		tab := New[uint8, int](per, all)
		next := 0
		for _, op := range ops {
			o := uint8(op % 7)
			if op&0x8000 != 0 { // a departure: o's newest place, if any
				if h := tab.Held(o); len(h) > 0 {
					tab.Remove(o, h[len(h)-1])
				}
				continue
			}
			before := len(tab.Held(o))
			most := 0
			for k := range uint8(7) {
				most = max(most, len(tab.Held(k)))
			}
			if from, ok := tab.Giver(o); ok {
				if from != o && len(tab.Held(from)) != most {
					t.Logf("giver %d holds %d, the most is %d", from, len(tab.Held(from)), most)
					return false
				}
				if from != o && before >= most {
					t.Logf("%d holds %d, as many as any, yet %d gave", o, before, from)
					return false
				}
				tab.Remove(from, tab.Held(from)[0])
			}
			tab.Add(o, next)
			next++
			if before == 0 && len(tab.Held(o)) != 1 {
				return false
			}
			if tab.Len() > all {
				t.Logf("%d places held, cap %d", tab.Len(), all)
				return false
			}
			sum := 0
			for k := range uint8(7) {
				h := tab.Held(k)
				sum += len(h)
				if len(h) > per {
					t.Logf("origin %d holds %d, cap %d", k, len(h), per)
					return false
				}
				for i := 1; i < len(h); i++ {
					if h[i-1] >= h[i] {
						t.Logf("origin %d's places %v not oldest first", k, h)
						return false
					}
				}
			}
			if sum != tab.Len() {
				return false
			}
		}
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 2000}); err != nil {
		t.Error(err)
	}
}
