package trigger_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

func TestScheduledJobs(t *testing.T) {
	for _, name := range []string{"eventbridge-scheduled-rule.json", "eventbridge-scheduler-job.json"} {
		t.Run(name, func(t *testing.T) {
			var runs []ctxSeen
			jobs := work.NewJobs()
			jobs.Register("outbox-sweep", func(ctx context.Context) error { runs = append(runs, seenOf(ctx)); return nil })
			jobs.Register("other", func(context.Context) error { t.Error("wrong job ran"); return nil })
			r, logs := newRouter(t)
			r.Jobs = jobs
			out, err := r.Invoke(context.Background(), sample(t, name))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != `{}` {
				t.Errorf("response = %s", out)
			}
			if len(runs) != 1 {
				t.Fatalf("outbox-sweep ran %d times", len(runs))
			}
			c := runs[0]
			if c.Trigger != "schedule" || c.Principal != "system" || !ids.Valid(ids.Invocation, c.InvocationID) || len(c.TraceID) != 32 {
				t.Errorf("context = %+v", c)
			}
			if !strings.Contains(logs.String(), `"job":"outbox-sweep"`) {
				t.Errorf("no log line names the job: %s", logs)
			}
		})
	}
}

func TestScheduledJobErrors(t *testing.T) {
	jobs := work.NewJobs()
	jobs.Register("outbox-sweep", func(context.Context) error { return errors.New("store unavailable") })
	jobs.Register("explode", func(context.Context) error { panic("bad wiring") })
	rule := func(ruleArn string) string {
		return `{"version":"0","id":"e1","detail-type":"Scheduled Event","source":"aws.events","time":"2025-11-03T09:15:00Z",
			"resources":["` + ruleArn + `"],"detail":{}}`
	}
	for _, tc := range []struct {
		name, payload, want string
	}{
		{"unknown job from rule", rule("arn:aws:events:eu-central-1:1:rule/switchboard-job-no-such-job"), `"no-such-job"`},
		{"unknown job from scheduler", `{"source":"switchboard.scheduler","detail-type":"switchboard.job","detail":{"job":"nightly"}}`, `"nightly"`},
		{"rule names no job", rule("arn:aws:events:eu-central-1:1:rule/some-other-rule"), `"some-other-rule" names no job`},
		{"rule with empty job", rule("arn:aws:events:eu-central-1:1:rule/switchboard-job-"), "names no job"},
		{"rule without resources", `{"source":"aws.events","detail-type":"Scheduled Event","resources":[]}`, "no rule"},
		{"scheduler without job", `{"source":"switchboard.scheduler","detail-type":"switchboard.job","detail":{}}`, "names no job"},
		{"scheduler detail not an object", `{"source":"switchboard.scheduler","detail-type":"switchboard.job","detail":"outbox-sweep"}`, "decode detail"},
		{"job fails", rule("arn:aws:events:eu-central-1:1:rule/custom-bus/switchboard-job-outbox-sweep"), "store unavailable"},
		{"job panics", `{"source":"switchboard.scheduler","detail-type":"switchboard.job","detail":{"job":"explode"}}`, "panicked: bad wiring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRouter(t)
			r.Jobs = jobs
			_, err := r.Invoke(context.Background(), []byte(tc.payload))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %s", err, tc.want)
			}
		})
	}
	t.Run("unknown job wraps work.ErrUnknownJob", func(t *testing.T) {
		r, _ := newRouter(t)
		r.Jobs = jobs
		_, err := r.Invoke(context.Background(), []byte(rule("arn:aws:events:r:1:rule/x-job-missing")))
		if !errors.Is(err, work.ErrUnknownJob) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestIntegrationEvent(t *testing.T) {
	var got []work.IntegrationEvent
	var seen ctxSeen
	subs := work.NewSubscriptions()
	subs.Subscribe("tenancy.tenant-onboarded", func(ctx context.Context, ev work.IntegrationEvent) error {
		got, seen = append(got, ev), seenOf(ctx)
		return nil
	})
	r, logs := newRouter(t)
	r.Events = subs
	payload := sample(t, "eventbridge-integration.json")
	out, err := r.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{}` || len(got) != 1 {
		t.Fatalf("response %s, delivered %d", out, len(got))
	}
	ev := got[0]
	var raw struct {
		Detail json.RawMessage `json:"detail"`
	}
	_ = json.Unmarshal(payload, &raw)
	if ev.ID != "6a7e8feb-b491-4cf7-a9f1-bf3703467718" || ev.Source != "switchboard.tenancy" || ev.Type != "tenancy.tenant-onboarded" ||
		!ev.Time.Equal(time.Date(2025, 11, 3, 9, 15, 1, 0, time.UTC)) || ev.TenantID != "tnt_01K94G2D9E4H7J2K5M8N1P3Q6R" ||
		string(ev.Detail) != string(raw.Detail) {
		t.Errorf("event = %+v", ev)
	}
	want := ctxSeen{
		InvocationID: "inv_01K94G2D7Y5B8C1D4E7F0G3H6J", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Trigger: "event", TenantID: "tnt_01K94G2D9E4H7J2K5M8N1P3Q6R", Principal: "system",
	}
	if seen != want {
		t.Errorf("context = %+v, want %+v", seen, want)
	}
	if !strings.Contains(logs.String(), `"eventType":"tenancy.tenant-onboarded"`) {
		t.Errorf("no log line for the event: %s", logs)
	}
}

func TestIntegrationEventErrors(t *testing.T) {
	subs := work.NewSubscriptions()
	subs.Subscribe("messaging.message-failed", func(context.Context, work.IntegrationEvent) error { return errors.New("webhook store down") })
	subs.Subscribe("messaging.message-sent", func(context.Context, work.IntegrationEvent) error { panic("oops") })
	for _, tc := range []struct {
		name, payload, want string
	}{
		{"unknown type", string(sample(t, "eventbridge-integration.json")), `"tenancy.tenant-onboarded"`},
		{"subscriber fails", `{"id":"e2","source":"switchboard.messaging","detail-type":"messaging.message-failed","detail":{}}`, "webhook store down"},
		{"subscriber panics", `{"id":"e3","source":"switchboard.messaging","detail-type":"messaging.message-sent","detail":{}}`, "panicked: oops"},
		{"bad time", `{"id":"e4","source":"switchboard.messaging","detail-type":"messaging.message-sent","time":"yesterday","detail":{}}`, "bad time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRouter(t)
			r.Events = subs
			if _, err := r.Invoke(context.Background(), []byte(tc.payload)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %s", err, tc.want)
			}
		})
	}
	t.Run("no id, no time, scalar detail", func(t *testing.T) {
		var got work.IntegrationEvent
		s := work.NewSubscriptions()
		s.Subscribe("x.y", func(_ context.Context, ev work.IntegrationEvent) error { got = ev; return nil })
		r, _ := newRouter(t)
		r.Events = s
		if _, err := r.Invoke(context.Background(), []byte(`{"source":"switchboard.x","detail-type":"x.y","detail":"hi"}`)); err != nil {
			t.Fatal(err)
		}
		if !ids.Valid(ids.Event, got.ID) || !got.Time.IsZero() || got.TenantID != "" || string(got.Detail) != `"hi"` {
			t.Errorf("event = %+v", got)
		}
	})
}
