package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// okResponse is the answer to an EventBridge invocation that succeeded.
var okResponse = []byte(`{}`)

// jobName returns the job an EventBridge event names: detail.job for our own
// switchboard.scheduler events, else the part of the rule name (resources[0],
// "arn:aws:events:<region>:<account>:rule/[<bus>/]<rule>") after its last
// "job-". It fails for an event that names no job.
func jobName(p *probe) (string, error) {
	if p.Source == SchedulerSource {
		var d struct {
			Job string `json:"job"`
		}
		if len(p.Detail) > 0 {
			if err := json.Unmarshal(p.Detail, &d); err != nil {
				return "", fmt.Errorf("trigger: %s event: decode detail: %w", SchedulerSource, err)
			}
		}
		if d.Job == "" {
			return "", fmt.Errorf("trigger: %s event names no job (detail.job is empty)", SchedulerSource)
		}
		return d.Job, nil
	}
	if len(p.Resources) == 0 {
		return "", fmt.Errorf("trigger: scheduled event %q has no rule in resources", p.ID)
	}
	arn := p.Resources[0]
	rule := arn[strings.LastIndexByte(arn, '/')+1:]
	i := strings.LastIndex(rule, RuleJobMarker)
	if i < 0 || i+len(RuleJobMarker) == len(rule) {
		return "", fmt.Errorf("trigger: scheduled rule %q names no job (want a rule name ending in %q<job>)", rule, RuleJobMarker)
	}
	return rule[i+len(RuleJobMarker):], nil
}

func (r *Router) runJob(ctx context.Context, p *probe) (_ []byte, err error) {
	name, err := jobName(p)
	if err != nil {
		r.logger().ErrorContext(ctx, "trigger: scheduled event names no job", slog.String("error", err.Error()))
		return nil, err
	}
	if r.Jobs == nil {
		return nil, fmt.Errorf("%w: scheduled job %q received but no job runner is configured", ErrNotConfigured, name)
	}
	c := r.newContext(invocation.Meta{}, TriggerSchedule, "")
	ctx = invocation.With(ctx, c)
	attrs := []slog.Attr{slog.String("job", name)}
	if p.ID != "" {
		attrs = append(attrs, slog.String("eventId", p.ID))
	}
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("trigger: scheduled job %q panicked: %v", name, v)
			r.logger().LogAttrs(ctx, slog.LevelError, "trigger: scheduled job panicked",
				append(attrs, slog.Any("panic", v), slog.Duration("duration", time.Since(start)),
					slog.String("stack", string(debug.Stack())))...)
		}
	}()
	if err := r.Jobs.Run(ctx, name); err != nil {
		r.logger().LogAttrs(ctx, slog.LevelError, "trigger: scheduled job failed",
			append(attrs, slog.Duration("duration", time.Since(start)), slog.String("error", err.Error()))...)
		return nil, fmt.Errorf("trigger: scheduled job %q: %w", name, err)
	}
	r.logger().LogAttrs(ctx, slog.LevelInfo, "trigger: scheduled job done",
		append(attrs, slog.Duration("duration", time.Since(start)))...)
	return okResponse, nil
}

// eventDetail is what the router reads from an integration event's detail:
// the tenant, and the invocation that caused the event (to continue its trace).
type eventDetail struct {
	TenantID   string           `json:"tenantId"`
	Invocation *invocation.Meta `json:"invocation"`
}

func (r *Router) deliverEvent(ctx context.Context, p *probe) (_ []byte, err error) {
	ev := work.IntegrationEvent{ID: p.ID, Source: p.Source, Type: *p.DetailType, Detail: p.Detail}
	if ev.ID == "" {
		ev.ID = r.ids().New(ids.Event)
	}
	if p.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, p.Time)
		if err != nil {
			return nil, fmt.Errorf("trigger: event %s %q: bad time %q: %w", ev.ID, ev.Type, p.Time, err)
		}
		ev.Time = t.UTC()
	}
	if len(ev.Detail) == 0 {
		ev.Detail = json.RawMessage(`{}`)
	}
	var d eventDetail
	_ = json.Unmarshal(ev.Detail, &d) // best effort: a detail that is not an object has neither
	ev.TenantID = d.TenantID
	if r.Events == nil {
		return nil, fmt.Errorf("%w: integration event %q from %s received but no event deliverer is configured",
			ErrNotConfigured, ev.Type, ev.Source)
	}
	var cause invocation.Meta
	if d.Invocation != nil {
		cause = *d.Invocation
	}
	c := r.newContext(cause, TriggerEvent, ev.TenantID)
	ctx = invocation.With(ctx, c)
	attrs := []slog.Attr{slog.String("eventId", ev.ID), slog.String("source", ev.Source), slog.String("eventType", ev.Type)}
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("trigger: integration event %s %q panicked: %v", ev.ID, ev.Type, v)
			r.logger().LogAttrs(ctx, slog.LevelError, "trigger: integration event panicked",
				append(attrs, slog.Any("panic", v), slog.Duration("duration", time.Since(start)),
					slog.String("stack", string(debug.Stack())))...)
		}
	}()
	if err := r.Events.Deliver(ctx, ev); err != nil {
		r.logger().LogAttrs(ctx, slog.LevelError, "trigger: integration event failed",
			append(attrs, slog.Duration("duration", time.Since(start)), slog.String("error", err.Error()))...)
		return nil, fmt.Errorf("trigger: integration event %s %q: %w", ev.ID, ev.Type, err)
	}
	r.logger().LogAttrs(ctx, slog.LevelInfo, "trigger: integration event delivered",
		append(attrs, slog.Duration("duration", time.Since(start)))...)
	return okResponse, nil
}
