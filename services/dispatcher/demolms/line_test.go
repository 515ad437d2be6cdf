package demolms_test

import (
	"strings"
	"testing"

	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/adaptertest"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/webhook"
)

// TestOrphanMissingPrinted: an orphan's line says what it went without, so
// that someone watching the demo sees why a lead.paid came alone.
func TestOrphanMissingPrinted(t *testing.T) {
	secret := webhook.GenerateSecret()
	out, _, a := demo(t, []string{secret}, []string{secret})
	ev := adaptertest.Event("evt-paid")
	ev.Type = "lead.paid"
	if err := deliver(t, a, &adapter.Delivery{Event: ev, Attempt: 1, Orphan: true, Missing: []string{"lead.invoiced"}}); err != nil {
		t.Fatal(err)
	}
	if err := deliver(t, a, &adapter.Delivery{Event: adaptertest.Event("evt-lead"), Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	lines := out.lines()
	if len(lines) != 2 {
		t.Fatalf("printed %d lines, want 2: %q", len(lines), lines)
	}
	if !strings.Contains(lines[0], "[orphan]  [missing lead.invoiced]") {
		t.Errorf("orphan printed as %q, want it marked [orphan] [missing lead.invoiced]", lines[0])
	}
	if strings.Contains(lines[1], "missing") {
		t.Errorf("an event with its prerequisites printed as %q, marked missing", lines[1])
	}
}
