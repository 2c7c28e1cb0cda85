package main

// events.go: EventBridge. A custom bus for the integration events the
// modules publish to other systems (source switchboard.<module>, detail-type
// e.g. message.delivered: events/README.md), and one schedule rule per
// recurring job of the code. Schedules are classic EventBridge rules on the
// default bus (schedule rules cannot live on a custom bus), not EventBridge
// Scheduler.

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/switchboard-dev/switchboard/modules/identity"
	"github.com/switchboard-dev/switchboard/modules/kernel/trigger"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// ScheduledJob is a job of work.Jobs and how often it runs.
type ScheduledJob struct {
	Name  string
	Every time.Duration
}

// ScheduledJobs are the jobs the binary registers (functions/lambdalith:
// app.go registers the sweep, the identity module the rotation; local mode
// runs the same jobs in jobLoop).
var ScheduledJobs = []ScheduledJob{
	// The outbox sweep hands the work queues what was not handed at commit:
	// work whose hand-off failed (a crash between commit and hand-off, SQS
	// refusing it) and work due later than SQS's 15-minute delay (scheduled
	// messages), which it hands up to 15 minutes ahead. Every minute: a
	// failed hand-off waits at most a minute.
	{Name: work.SweepJob, Every: time.Minute},
	// Signing key rotation makes a new key only when the newest is older
	// than SWITCHBOARD_SIGNING_KEY_ROTATION_HOURS (at least 1 h); every 5
	// minutes (as local mode) a rotation is at most 5 minutes late.
	{Name: identity.RotationJob, Every: 5 * time.Minute},
}

// JobEvent is the event a job's rule sends: the scheduled-job form the
// trigger router recognizes by source and detail-type, naming the job.
func JobEvent(job string) map[string]any {
	return map[string]any{
		"source":      trigger.SchedulerSource,
		"detail-type": trigger.JobDetailType,
		"detail":      map[string]any{"job": job},
	}
}

// JobRuleName is a job's rule: <prefix>-job-<job>. The router would also
// run the job from the rule name alone (trigger.RuleJobMarker).
func JobRuleName(prefix, job string) string { return prefix + "-" + trigger.RuleJobMarker + job }

// IntegrationBusName is the integration event bus: <prefix>-integration.
func IntegrationBusName(prefix string) string { return prefix + "-integration" }

// Events is the integration bus and the job schedules.
type Events struct {
	// Scope is the construct the parts are made in.
	Scope     constructs.Construct
	Bus       awsevents.EventBus
	Schedules map[string]awsevents.Rule
}

// newEventBus makes the integration bus (before the functions, which get
// its name and may put events on it).
func newEventBus(scope constructs.Construct, cfg Config) *Events {
	e := &Events{Scope: constructs.NewConstruct(scope, jsii.String("Events")), Schedules: map[string]awsevents.Rule{}}
	e.Bus = awsevents.NewEventBus(e.Scope, jsii.String("IntegrationBus"), &awsevents.EventBusProps{
		EventBusName: jsii.String(IntegrationBusName(cfg.NamePrefix)),
		Description:  jsii.String("Switchboard integration events (source switchboard.<module>, e.g. message.delivered)"),
	})
	return e
}

// addSchedules makes one rule per ScheduledJob invoking the worker. A tick
// is not retried past the job's period: the next tick does the same work.
func (e *Events) addSchedules(cfg Config, worker awslambda.IFunction) {
	for _, j := range ScheduledJobs {
		if j.Every < time.Minute || j.Every%time.Minute != 0 {
			panic(fmt.Sprintf("scheduled job %s: period %s is not whole minutes", j.Name, j.Every))
		}
		minutes := float64(j.Every / time.Minute)
		e.Schedules[j.Name] = awsevents.NewRule(e.Scope, jsii.String("Job-"+j.Name), &awsevents.RuleProps{
			RuleName:    jsii.String(JobRuleName(cfg.NamePrefix, j.Name)),
			Description: jsii.String(fmt.Sprintf("Switchboard job %s, every %d min", j.Name, int(minutes))),
			Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(minutes))),
			Targets: &[]awsevents.IRuleTarget{
				awseventstargets.NewLambdaFunction(worker, &awseventstargets.LambdaFunctionProps{
					Event:         awsevents.RuleTargetInput_FromObject(JobEvent(j.Name)),
					RetryAttempts: jsii.Number(2),
					MaxEventAge:   awscdk.Duration_Minutes(jsii.Number(minutes)),
				}),
			},
		})
	}
}
