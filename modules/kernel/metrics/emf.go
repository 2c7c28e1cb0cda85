package metrics

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// CloudWatch units of the values EMF writes.
const (
	UnitCount        = "Count"
	UnitMilliseconds = "Milliseconds"
)

// Limits of the Embedded Metric Format that EMF enforces (a value breaking
// them is dropped, not written: CloudWatch would reject the whole document).
const (
	// MaxDimensions is the most dimensions of one dimension set.
	MaxDimensions = 30
	// MaxNameLength bounds metric and dimension names.
	MaxNameLength = 255
	// MaxDimensionValueLength bounds dimension values.
	MaxDimensionValueLength = 1024
)

// Members EMF adds to every document besides the metric and its dimensions,
// so that a value can be traced to its invocation in CloudWatch Logs
// Insights. They are properties, not dimensions (no metric per id).
const (
	PropertyInvocationID = "invocationId"
	PropertyTraceID      = "traceId"
	PropertyTenantID     = "tenantId"
)

// EMFOptions tune NewEMF; zero values take the defaults.
type EMFOptions struct {
	Namespace string       // default Namespace
	Clock     clock.Clock  // the document's Timestamp; default clock.System
	Logger    *slog.Logger // dropped values and write errors; default: discard
}

// EMF is the Recorder of Lambda mode: each Count or Duration writes one
// CloudWatch Embedded Metric Format document, a single JSON line, to w
// (stdout in Lambda, whose lines reach CloudWatch Logs, which extracts the
// metric):
//
//	{"_aws":{"Timestamp":1767225600000,"CloudWatchMetrics":[{"Namespace":"Switchboard",
//	  "Dimensions":[["ChannelType"]],"Metrics":[{"Name":"MessagesSent","Unit":"Count"}]}]},
//	 "ChannelType":"sms","MessagesSent":1,"invocationId":"inv_...","traceId":"...","tenantId":"tnt_..."}
//
// A value is written when it is recorded, not aggregated per invocation:
// nothing is lost when Lambda freezes or ends the environment after the
// invocation, and no end-of-invocation hook is needed. The cost is one log
// line per value, the order of the log lines the same events already write.
// Safe for concurrent use: each document is one Write.
type EMF struct {
	w         io.Writer
	namespace string
	clock     clock.Clock
	log       *slog.Logger

	mu sync.Mutex // one document per Write, in order
}

var _ Recorder = (*EMF)(nil)

// NewEMF returns a recorder writing EMF documents to w.
func NewEMF(w io.Writer, o EMFOptions) *EMF {
	if o.Namespace == "" {
		o.Namespace = Namespace
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &EMF{w: w, namespace: o.Namespace, clock: o.Clock, log: o.Logger}
}

// Count implements Recorder (unit Count). A negative n is dropped.
func (e *EMF) Count(ctx context.Context, name string, dims Dimensions, n int64) {
	if n < 0 {
		e.drop(ctx, name, "negative count")
		return
	}
	e.write(ctx, name, UnitCount, dims, n)
}

// Duration implements Recorder (unit Milliseconds, with microsecond
// precision). A negative duration (clocks of two instances apart) counts as 0.
func (e *EMF) Duration(ctx context.Context, name string, dims Dimensions, d time.Duration) {
	d = max(d, 0).Round(time.Microsecond)
	e.write(ctx, name, UnitMilliseconds, dims, float64(d)/float64(time.Millisecond))
}

// emfMetadata is the "_aws" member.
type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfDirective struct {
	Namespace  string          `json:"Namespace"`
	Dimensions [][]string      `json:"Dimensions"`
	Metrics    []emfDefinition `json:"Metrics"`
}

type emfDefinition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

func (e *EMF) write(ctx context.Context, name, unit string, dims Dimensions, value any) {
	if reason := check(name, dims); reason != "" {
		e.drop(ctx, name, reason)
		return
	}
	keys := make([]string, 0, len(dims))
	doc := make(map[string]any, len(dims)+5)
	for k, v := range dims {
		keys = append(keys, k)
		doc[k] = v
	}
	slices.Sort(keys)
	doc[name] = value
	inv := invocation.From(ctx)
	for k, v := range map[string]string{PropertyInvocationID: inv.InvocationID, PropertyTraceID: inv.TraceID, PropertyTenantID: inv.TenantID()} {
		if _, taken := doc[k]; !taken && v != "" {
			doc[k] = v
		}
	}
	doc["_aws"] = emfMetadata{
		Timestamp: e.clock.Now().UnixMilli(),
		CloudWatchMetrics: []emfDirective{{
			Namespace: e.namespace, Dimensions: [][]string{keys}, Metrics: []emfDefinition{{Name: name, Unit: unit}},
		}},
	}
	line, err := json.Marshal(doc)
	if err != nil {
		e.drop(ctx, name, err.Error())
		return
	}
	line = append(line, '\n')
	e.mu.Lock()
	_, err = e.w.Write(line)
	e.mu.Unlock()
	if err != nil {
		e.log.WarnContext(ctx, "metric not written", slog.String("metric", name), slog.String("error", err.Error()))
	}
}

// check returns why a value cannot be an EMF document ("" when it can).
func check(name string, dims Dimensions) string {
	switch {
	case !validName(name):
		return "invalid metric name"
	case len(dims) > MaxDimensions:
		return "too many dimensions"
	}
	for k, v := range dims {
		switch {
		case !validName(k) || k == name:
			return "invalid dimension name"
		case v == "" || len(v) > MaxDimensionValueLength:
			return "invalid dimension value"
		}
	}
	return ""
}

// validName: 1..MaxNameLength bytes, not the metadata member.
func validName(s string) bool { return s != "" && len(s) <= MaxNameLength && s != "_aws" }

func (e *EMF) drop(ctx context.Context, name, reason string) {
	e.log.WarnContext(ctx, "metric dropped", slog.String("metric", name), slog.String("reason", reason))
}
