// Package grafana builds leadstream's Grafana dashboard as code (with the
// Grafana Foundation SDK). The JSON in dashboards/ is generated from it and
// committed: `make dashboards` writes it again, and a test fails when it is
// stale.
package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's uid (its address in Grafana).
const UID = "leadstream-overview"

// datasource is the Prometheus data source the panels query: the one of
// the dashboard's variable $datasource.
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// Dashboard is leadstream's overview of all three services: intake and
// verification at the edge, the normalizers' lag, the dispatchers'
// backlog, deliveries, retries, parked events, breakers, dead letters and
// end-to-end latency.
func Dashboard() (dashboard.Dashboard, error) {
	return dashboard.NewDashboardBuilder("leadstream").
		Uid(UID).
		Tags([]string{"leadstream", "webhooks", "nats"}).
		Refresh("30s").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
		WithRow(dashboard.NewRowBuilder("Edge")).
		WithPanel(series("Webhooks by source and outcome", "reqps",
			query(`sum by (source, outcome) (rate(leadstream_edge_requests_total[$__rate_interval]))`, "{{source}} {{outcome}}"))).
		WithPanel(series("Verification failures by reason", "reqps",
			query(`sum by (source, reason) (rate(leadstream_edge_verify_failures_total[$__rate_interval]))`, "{{source}} {{reason}}"))).
		WithPanel(series("Requests in flight and bodies being read", "short",
			query(`sum(leadstream_edge_in_flight)`, "in flight"),
			query(`sum(leadstream_edge_reading)`, "reading"))).
		WithRow(dashboard.NewRowBuilder("Normalizer")).
		WithPanel(series("Normalizer lag by kind (RAW messages waiting)", "short",
			query(`sum by (kind) (leadstream_normalizer_consumer_pending)`, "{{kind}} pending"),
			query(`sum by (kind) (leadstream_normalizer_consumer_ack_pending)`, "{{kind}} in flight"))).
		WithPanel(series("Normalized by kind and outcome", "ops",
			query(`sum by (kind, outcome) (rate(leadstream_normalizer_messages_total[$__rate_interval]))`, "{{kind}} {{outcome}}"))).
		WithRow(dashboard.NewRowBuilder("Dispatcher")).
		WithPanel(series("Dispatcher backlog by adapter (events not yet taken)", "short",
			query(`max by (adapter) (leadstream_dispatcher_group_backlog)`, "{{adapter}}"))).
		WithPanel(series("Deliveries by adapter and outcome", "ops",
			query(`sum by (adapter, outcome) (rate(leadstream_dispatcher_deliveries_total[$__rate_interval]))`, "{{adapter}} {{outcome}}"))).
		WithPanel(series("Retries: aggregates waiting for a retry", "short",
			query(`sum by (adapter) (leadstream_dispatcher_retry_backlog)`, "{{adapter}}"))).
		WithPanel(series("Parked events and the oldest one's age", "short",
			query(`sum by (adapter) (leadstream_dispatcher_parked)`, "{{adapter}} parked"),
			query(`max by (adapter) (leadstream_dispatcher_oldest_parked_seconds)`, "{{adapter}} oldest (s)"))).
		WithPanel(series("End-to-end latency, edge receipt to the LMS's 2xx", "s",
			query(`histogram_quantile(0.5, sum by (le, adapter) (rate(leadstream_dispatcher_end_to_end_seconds_bucket[$__rate_interval])))`, "{{adapter}} p50"),
			query(`histogram_quantile(0.95, sum by (le, adapter) (rate(leadstream_dispatcher_end_to_end_seconds_bucket[$__rate_interval])))`, "{{adapter}} p95"),
			query(`histogram_quantile(0.99, sum by (le, adapter) (rate(leadstream_dispatcher_end_to_end_seconds_bucket[$__rate_interval])))`, "{{adapter}} p99"))).
		WithPanel(stat.NewPanelBuilder().Title("Circuit breakers (0 closed, 1 half-open, 2 open)").Datasource(datasource).
			WithTarget(query(`max by (adapter) (leadstream_dispatcher_breaker_state)`, "{{adapter}}"))).
		WithPanel(stat.NewPanelBuilder().Title("Dead letters waiting in DLQ").Datasource(datasource).
			WithTarget(query(`max by (adapter) (leadstream_dispatcher_dlq_depth)`, "deliver {{adapter}}")).
			WithTarget(query(`max by (kind) (leadstream_normalizer_dlq_depth)`, "normalize {{kind}}"))).
		Build()
}

func series(title, unit string, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Unit(unit).Min(0).Datasource(datasource)
	for _, q := range queries {
		p = p.WithTarget(q)
	}
	return p
}

func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Expr(expr).LegendFormat(legend)
}
