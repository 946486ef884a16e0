package main

import _ "embed"

// devRegistry is the example registry of --dev mode.
//
//go:embed dev-registry.yaml
var devRegistry []byte
