// Package metrics is the port for business metrics (counts and durations by
// dimension) with its adapters:
//
//   - EMF (Lambda mode): one CloudWatch Embedded Metric Format document per
//     recorded value, a JSON line on stdout, which CloudWatch Logs turns into
//     metrics of the namespace "Switchboard" (no API call, no agent).
//   - Nop (local mode): records nothing.
//
// Metrics never fail the work that records them: an adapter that cannot write
// drops the value (and logs why). Callers record after their commit
// (uow.OnCommit), so a unit of work that is run again or fails counts nothing.
// See docs/adr/0014-metrics.md.
package metrics

import (
	"context"
	"time"
)

// Namespace is the CloudWatch namespace of Switchboard's metrics.
const Namespace = "Switchboard"

// Dimensions name what a value is about (e.g. {"ChannelType": "sms"}): each
// distinct set of values is its own metric (keep their values few: never an
// id). At most MaxDimensions; names and values are non-empty.
type Dimensions map[string]string

// Recorder is the port to business metrics.
//
// Count adds n (at least 0) to the metric name; Duration records one
// duration (in milliseconds; a negative one counts as 0). Names are stable:
// dashboards and alarms use them. Recording never blocks for long, never
// fails and never panics (invalid values are dropped); implementations are
// safe for concurrent use. ctx carries the invocation, which an adapter may
// attach to the value (for searching, never as a dimension).
type Recorder interface {
	Count(ctx context.Context, name string, dims Dimensions, n int64)
	Duration(ctx context.Context, name string, dims Dimensions, d time.Duration)
}

// Nop is the Recorder of local mode: it records nothing.
type Nop struct{}

var _ Recorder = Nop{}

// Count implements Recorder.
func (Nop) Count(context.Context, string, Dimensions, int64) {}

// Duration implements Recorder.
func (Nop) Duration(context.Context, string, Dimensions, time.Duration) {}
