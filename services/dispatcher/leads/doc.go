// Package leads keeps the order-independent projection of every aggregate's
// current state (lead, conversation, transaction, invoice, advertisement,
// call, enquiry) in the JetStream KV bucket "leads".
//
// Providers deliver at least once and in any order, and several dispatcher
// instances write the same keys. The projection therefore is a state-based
// CRDT: a State is a join-semilattice and Merge is its join, so Merge is
// commutative, associative and idempotent, and Apply(s, ev) is
// Merge(s, state of ev). Any arrival order of the same events, with any
// duplicates, reaches the same State, and Marshal encodes equal States to
// the same bytes. The Store writes with compare-and-set on the key's
// revision, so concurrent writers never lose each other's events.
package leads
