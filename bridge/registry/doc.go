// Package registry holds the device registry: Drogue-compatible Application
// and Device objects read from multi-document YAML (SPEC §4), validated
// strictly, indexed for lookup by name or alias, and reloaded when the files
// change.
//
// An application's trust anchors (CA certificates) are parsed at load; a CA
// subject belongs to one application, whose alias it also is in Drogue's DN
// string format (DNString), so that ApplicationForIssuer can tell which
// application a client certificate claims to belong to (SPEC §5).
//
// A Registry is an immutable snapshot; a Store hands out the current snapshot
// lock-free and swaps in a new one only when the whole registry parses, so a
// broken edit keeps the last good registry.
//
// Reloading from a directory follows the layout Kubernetes uses for mounted
// Secrets and ConfigMaps: files are symlinks through a "..data" symlink that is
// swapped atomically, so the watcher observes the directory, not the files.
package registry
