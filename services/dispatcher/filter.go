package dispatcher

import (
	"slices"
	"strings"

	"github.com/leadstream/leadstream/pkg/config"
)

// filterSubjects turns an adapter's types and tenants into the EVENTS
// subjects its consumer filters on (events.<kind>.<action>.<tenant>.<aggregate token>).
func filterSubjects(a *config.Adapter) []string {
	types := a.Types
	if len(types) == 0 || slices.Contains(types, "*") {
		types = []string{"*.*"}
	}
	// "lead.*" covers "lead.created": overlapping filters are refused by
	// JetStream.
	var kept []string
	for _, t := range types {
		kind, _, _ := strings.Cut(t, ".")
		if t != kind+".*" && slices.Contains(types, kind+".*") {
			continue
		}
		if !slices.Contains(kept, t) {
			kept = append(kept, t)
		}
	}
	if slices.Contains(kept, "*.*") {
		kept = []string{"*.*"}
	}
	tenants := a.Tenants
	if len(tenants) == 0 {
		tenants = []string{"*"}
	}
	var out []string
	for _, t := range kept {
		for _, tenant := range tenants {
			out = append(out, "events."+t+"."+tenant+".*")
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// subscribedFunc reports whether an adapter receives events of a type.
func subscribedFunc(a *config.Adapter) func(string) bool {
	return func(eventType string) bool {
		if len(a.Types) == 0 {
			return true
		}
		kind, _, _ := strings.Cut(eventType, ".")
		for _, t := range a.Types {
			if t == "*" || t == eventType || t == kind+".*" {
				return true
			}
		}
		return false
	}
}
