// Package sink is the HTTP command sink (SPEC §7): it accepts command CloudEvents (binary or
// structured mode) and the REST form of the Drogue command API, validates them and hands each
// command to a Deliverer, answering with the status Knative's delivery semantics expect.
// It imports no other package of the endpoint; bridge implements Deliverer.
package sink
