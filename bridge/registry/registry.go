package registry

import (
	"slices"
	"strings"
)

// Registry is an immutable snapshot of the registry, safe for concurrent
// reads. The objects it returns are shared and must not be modified.
type Registry struct {
	apps     map[string]*Application       // by lookup key (appKeys)
	devices  map[string]map[string]*Device // by application name, then lookup key (deviceKeys)
	appList  []*Application                // sorted by name
	devLists map[string][]*Device          // by application name, sorted by name
	issuers  map[string]*Application       // by the RawSubject of each trust anchor
	nDevices int
}

// Application returns the application found by nameOrAlias: its name, or
// the subject DN string (see DNString) of one of its trust anchors
// (drogue-mqtt.md §1 "Lookup is by alias").
func (r *Registry) Application(nameOrAlias string) (*Application, bool) {
	if r == nil {
		return nil, false
	}
	a, ok := r.apps[nameOrAlias]
	return a, ok
}

// Device returns the device of application app (its metadata.name) whose
// name, alias or unique username is nameOrAlias (drogue-mqtt.md §1 "Lookup
// is by alias").
func (r *Registry) Device(app, nameOrAlias string) (*Device, bool) {
	if r == nil {
		return nil, false
	}
	d, ok := r.devices[app][nameOrAlias]
	return d, ok
}

// Counts returns the number of applications and devices.
func (r *Registry) Counts() (apps, devices int) {
	if r == nil {
		return 0, 0
	}
	return len(r.appList), r.nDevices
}

// Applications returns all applications, sorted by name.
func (r *Registry) Applications() []*Application {
	if r == nil {
		return nil
	}
	return slices.Clone(r.appList)
}

// Devices returns the devices of application app (its metadata.name),
// sorted by name.
func (r *Registry) Devices(app string) []*Device {
	if r == nil {
		return nil
	}
	return slices.Clone(r.devLists[app])
}

// lookupKey is a string an object can be found by, and what it is to the
// object.
type lookupKey struct {
	key  string
	role string // "name", "alias", "unique username" or roleAnchor
}

// appKeys returns the keys an application is found by: its name and the
// subject DN string of every trust anchor (drogue-mqtt.md §1). A subject
// that has no DN string (see DNString) or an empty one is no alias.
func appKeys(a *Application) []lookupKey {
	keys := []lookupKey{{a.Name, "name"}}
	for _, c := range a.Anchors {
		if dn, err := DNString(c.RawSubject); err == nil && dn != "" {
			keys = append(keys, lookupKey{dn, roleAnchor})
		}
	}
	return keys
}

// deviceKeys returns the keys a device is found by: its name, every
// spec.alias entry and the username of every unique user credential
// (drogue-mqtt.md §1).
func deviceKeys(d *Device) []lookupKey {
	keys := []lookupKey{{d.Name, "name"}}
	for _, a := range d.Aliases {
		keys = append(keys, lookupKey{a, "alias"})
	}
	for _, c := range d.Credentials {
		if c.Kind == CredentialUser && c.Unique {
			keys = append(keys, lookupKey{c.Username, "unique username"})
		}
	}
	return keys
}

// sortByName orders objects by their Name field.
func sortByName[T any](s []T, name func(T) string) {
	slices.SortFunc(s, func(a, b T) int { return strings.Compare(name(a), name(b)) })
}
