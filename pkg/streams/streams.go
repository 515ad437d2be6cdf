// Package streams declares the JetStream streams leadstream owns and creates
// or updates them at start-up, so that nothing is ever published into a
// stream that does not exist (and no client auto-provisions a wrong one).
package streams

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/config"
)

// RAW is the stream of verified webhook requests, the source of truth.
const RAW = "RAW"

// RawConfig is RAW's configuration from cfg: file storage, the configured
// retention and duplicate window, and atomic batch publishing so the edge can
// commit many requests with one fsync.
func RawConfig(cfg *config.Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               RAW,
		Description:        "leadstream: verified webhook requests, exact bodies plus envelope headers",
		Subjects:           []string{"raw.>"},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		MaxAge:             cfg.Streams.RawMaxAge.Duration,
		Duplicates:         cfg.Streams.RawDuplicateWindow.Duration,
		Replicas:           cfg.NATS.Replicas,
		MaxMsgSize:         int32(cfg.MaxBodyBytes + 64<<10),
		AllowAtomicPublish: true,
		AllowDirect:        true,
	}
}

// Ensure creates each stream or updates it to the given configuration.
func Ensure(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, sc := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("creating or updating stream %s: %w", sc.Name, err)
		}
	}
	return nil
}
