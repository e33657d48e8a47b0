package dataplane

import (
	"errors"
	"sync"
)

// groups resets every session whose path goes away: sessions join the group of the done
// channel of the secure channel they run over, and one goroutine per channel (not per
// session) waits for it.
type groups struct {
	mu sync.Mutex
	m  map[<-chan struct{}]map[*session]struct{}
}

var errPathDown = errors.New("the secure channel under the portal closed")

// add puts s in the group of done; it reports false if done is already closed.
func (g *groups) add(done <-chan struct{}, s *session) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-done:
		return false
	default:
	}
	if g.m == nil {
		g.m = make(map[<-chan struct{}]map[*session]struct{})
	}
	set := g.m[done]
	if set == nil {
		set = make(map[*session]struct{})
		g.m[done] = set
		go g.watch(done)
	}
	set[s] = struct{}{}
	s.group, s.groupKey = g, done
	return true
}

// remove takes an ended session out of its group.
func (g *groups) remove(s *session) {
	g.mu.Lock()
	delete(g.m[s.groupKey], s)
	g.mu.Unlock()
}

func (g *groups) watch(done <-chan struct{}) {
	<-done
	g.mu.Lock()
	set := g.m[done]
	delete(g.m, done)
	g.mu.Unlock()
	for s := range set {
		s.reset(errPathDown, false)
	}
}

// sessions returns every session in a group, for a re-check of their policy.
func (g *groups) sessions() []*session {
	g.mu.Lock()
	defer g.mu.Unlock()
	var all []*session
	for _, set := range g.m {
		for s := range set {
			all = append(all, s)
		}
	}
	return all
}

// resetAll ends every session, for Close.
func (g *groups) resetAll(why error) {
	for _, s := range g.sessions() {
		s.reset(why, true)
	}
}
