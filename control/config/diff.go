package config

// Diff is what turns one config's resources into another's.
type Diff struct {
	Relays   Changes[Relay]
	Outlets  Changes[Outlet]
	Inlets   Changes[Inlet]
	Policies Changes[Policy]
}

// Changes of one kind of resource: Replace holds the new declaration of a changed one.
type Changes[T any] struct {
	Create, Delete, Replace []T
	Keep                    []T // unchanged: left alone, live sessions and all
}

// Empty reports whether the diff changes nothing.
func (d Diff) Empty() bool {
	n := 0
	for _, l := range []int{len(d.Relays.Create), len(d.Relays.Delete), len(d.Relays.Replace),
		len(d.Outlets.Create), len(d.Outlets.Delete), len(d.Outlets.Replace),
		len(d.Inlets.Create), len(d.Inlets.Delete), len(d.Inlets.Replace),
		len(d.Policies.Create), len(d.Policies.Delete), len(d.Policies.Replace)} {
		n += l
	}
	return n == 0
}

// Compare says how to get from old (nil: nothing) to new.
func Compare(old, new *Config) Diff {
	if old == nil {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	return Diff{
		Relays:   changes(old.Relays, new.Relays, func(r Relay) string { return r.Name }, func(a, b Relay) bool { return a.Name == b.Name }),
		Outlets:  changes(old.Outlets, new.Outlets, Outlet.Key, Outlet.same),
		Inlets:   changes(old.Inlets, new.Inlets, Inlet.Key, Inlet.same),
		Policies: changes(old.Policies, new.Policies, Policy.Key, Policy.same),
	}
}

func changes[T any](old, new []T, key func(T) string, same func(T, T) bool) Changes[T] {
	var c Changes[T]
	was := map[string]T{}
	for _, o := range old {
		was[key(o)] = o
	}
	is := map[string]bool{}
	for _, n := range new {
		k := key(n)
		is[k] = true
		o, ok := was[k]
		switch {
		case !ok:
			c.Create = append(c.Create, n)
		case same(o, n):
			c.Keep = append(c.Keep, n)
		default:
			c.Replace = append(c.Replace, n)
		}
	}
	for _, o := range old {
		if !is[key(o)] {
			c.Delete = append(c.Delete, o)
		}
	}
	return c
}
