package dispatcher

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/natsstream"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/webhook"
)

// newAdapter builds the adapter an adapters[] entry describes.
func newAdapter(a *config.Adapter, log *zap.Logger) (adapter.Adapter, error) {
	switch a.Type {
	case webhook.Type:
		c := webhook.ConfigFrom(*a)
		c.Timeout = a.Timeout.Duration
		c.BreakerFailures = a.BreakerFailures
		c.BreakerCooldown = a.BreakerCooldown.Duration
		return webhook.New(c, log)
	case natsstream.Type:
		return natsstream.New(natsstream.ConfigFrom(*a), log)
	default:
		return nil, fmt.Errorf("unknown adapter type %q", a.Type)
	}
}
