package main

// observability.go: the alarm topic, the alarms, the parked-work metric
// filter and the dashboard. Every alarm publishes to the alarm topic
// (encrypted; context alarmEmail subscribes an address). A siloed tenant's
// stack adds its queue alarms with newQueueAlarms.

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/switchboard-dev/switchboard/modules/kernel/metrics"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/kernel/work/sqstransport"
	messagingapp "github.com/switchboard-dev/switchboard/modules/messaging/app"
)

// Metrics of the code.
const (
	// MetricsNamespace is the CloudWatch namespace of Switchboard's own
	// metrics: the function's Embedded Metric Format metrics and the
	// metric filter below.
	MetricsNamespace = metrics.Namespace
	// The function's EMF metrics (counts per message, with the dimension
	// DimensionChannelType) and the dispatch latency in milliseconds.
	MetricMessagesAccepted  = messagingapp.MetricMessagesAccepted
	MetricMessagesSent      = messagingapp.MetricMessagesSent
	MetricMessagesDelivered = messagingapp.MetricMessagesDelivered
	MetricMessagesFailed    = messagingapp.MetricMessagesFailed
	MetricDispatchLatency   = messagingapp.MetricDispatchLatency
	DimensionChannelType    = messagingapp.DimensionChannelType
	// MetricOutboxParked counts the outbox entries the work path parked:
	// the metric filter on both functions' logs counts ParkedLogTerm.
	MetricOutboxParked = "OutboxEntriesParked"
	// ParkedLogTerm is the phrase of the error line the work path writes
	// when an entry used its attempts and is parked ("work failed for
	// good; parked in the outbox", "work hand-off failed for good; ...",
	// modules/kernel/work); TestParkedLogTerm checks it against the code.
	ParkedLogTerm = work.ParkedLogPhrase
)

// Alarm thresholds.
const (
	// OldestMessageAlarmSeconds: work items may wait in the queue on
	// purpose, up to SQS's 900 s delivery delay (sqstransport.MaxDelay);
	// older than that plus five minutes means the worker is not keeping up.
	OldestMessageAlarmSeconds = int(sqstransport.MaxDelay/time.Second) + 5*60
	// API5xxAlarmCount: 5xx answers per five minutes. The API answers no
	// input with a 5xx (its fuzz test); a handful in five minutes is an
	// outage or a bug, a single one may be a cold start that timed out.
	API5xxAlarmCount = 5
)

// Observability is the alarm topic, the alarms and the dashboard.
type Observability struct {
	// Scope is the construct the parts are made in.
	Scope     constructs.Construct
	Topic     awssns.Topic
	Alarms    []awscloudwatch.Alarm
	Dashboard awscloudwatch.Dashboard
}

// newObservability makes the alarm topic (encrypted with the alarms key).
func newObservability(scope constructs.Construct, cfg Config, keys *Keys) *Observability {
	o := &Observability{Scope: constructs.NewConstruct(scope, jsii.String("Observability"))}
	o.Topic = awssns.NewTopic(o.Scope, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("Switchboard alarms"),
		MasterKey:   keys.Alarms,
		EnforceSSL:  jsii.Bool(true),
	})
	if cfg.AlarmEmail != "" {
		o.Topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(cfg.AlarmEmail), nil))
	}
	return o
}

// watched is what the alarms and the dashboard watch.
type watched struct {
	fns    *Functions
	api    *API
	pooled *WorkQueues
}

// watch adds the deployment's alarms, the parked-work metric filters and
// the dashboard.
func (o *Observability) watch(cfg Config, w watched) {
	five := awscdk.Duration_Minutes(jsii.Number(5))
	one := awscdk.Duration_Minutes(jsii.Number(1))

	o.Alarms = append(o.Alarms, newQueueAlarms(o.Scope, "Pooled", "the pooled work queue", w.pooled, o.Topic)...)

	for _, f := range []struct {
		name string
		l    *Lambdalith
	}{{"Api", w.fns.API}, {"Worker", w.fns.Worker}} {
		o.Alarms = append(o.Alarms,
			newAlarm(o.Scope, f.name+"FunctionErrors", o.Topic, &awscloudwatch.AlarmProps{
				AlarmDescription: jsii.String(fmt.Sprintf("The %s function failed invocations (crashes, timeouts, failed jobs)", strings.ToLower(f.name))),
				Metric:           f.l.Function.MetricErrors(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}),
				Threshold:        jsii.Number(0),
			}),
			newAlarm(o.Scope, f.name+"FunctionThrottles", o.Topic, &awscloudwatch.AlarmProps{
				AlarmDescription: jsii.String(fmt.Sprintf("The %s function was throttled (account concurrency exhausted)", strings.ToLower(f.name))),
				Metric:           f.l.Function.MetricThrottles(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}),
				Threshold:        jsii.Number(0),
			}),
		)
		awslogs.NewMetricFilter(o.Scope, jsii.String(f.name+"ParkedWork"), &awslogs.MetricFilterProps{
			LogGroup:        f.l.Logs,
			FilterPattern:   awslogs.FilterPattern_AllTerms(jsii.String(ParkedLogTerm)),
			MetricNamespace: jsii.String(MetricsNamespace),
			MetricName:      jsii.String(MetricOutboxParked),
			MetricValue:     jsii.String("1"),
		})
	}
	parked := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:  jsii.String(MetricsNamespace),
		MetricName: jsii.String(MetricOutboxParked),
		Statistic:  jsii.String("Sum"),
		Period:     five,
	})
	o.Alarms = append(o.Alarms,
		newAlarm(o.Scope, "OutboxEntriesParked", o.Topic, &awscloudwatch.AlarmProps{
			AlarmDescription: jsii.String("Work used its attempts and was parked in the outbox (list-parked-work, replay-parked-work)"),
			Metric:           parked,
			Threshold:        jsii.Number(0),
		}),
		newAlarm(o.Scope, "Api5xx", o.Topic, &awscloudwatch.AlarmProps{
			AlarmDescription: jsii.String(fmt.Sprintf("The API answered at least %d 5xx in five minutes", API5xxAlarmCount)),
			Metric:           w.api.metric5xx(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}),
			Threshold:        jsii.Number(API5xxAlarmCount - 1),
		}),
	)

	o.Dashboard = o.dashboard(cfg, w, parked, one, five)
}

// newQueueAlarms are a queue pair's alarms: a message in the DLQ, and the
// oldest message older than OldestMessageAlarmSeconds for five minutes.
// what names the queue in the descriptions.
func newQueueAlarms(scope constructs.Construct, idPrefix, what string, q *WorkQueues, topic awssns.ITopic) []awscloudwatch.Alarm {
	one := awscdk.Duration_Minutes(jsii.Number(1))
	return []awscloudwatch.Alarm{
		newAlarm(scope, idPrefix+"DlqNotEmpty", topic, &awscloudwatch.AlarmProps{
			AlarmDescription: jsii.String("Work items of " + what + " exhausted their receives and sit in its DLQ (redrive: see README, Deploy)"),
			Metric:           q.DLQ.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: one, Statistic: jsii.String("Maximum")}),
			Threshold:        jsii.Number(0),
		}),
		newAlarm(scope, idPrefix+"OldestMessage", topic, &awscloudwatch.AlarmProps{
			AlarmDescription:  jsii.String(fmt.Sprintf("The oldest message of %s is older than %d s: the worker is not keeping up", what, OldestMessageAlarmSeconds)),
			Metric:            q.Queue.MetricApproximateAgeOfOldestMessage(&awscloudwatch.MetricOptions{Period: one, Statistic: jsii.String("Maximum")}),
			Threshold:         jsii.Number(OldestMessageAlarmSeconds),
			EvaluationPeriods: jsii.Number(5),
		}),
	}
}

// newAlarm is an alarm on props.Metric > props.Threshold (one period unless
// props says otherwise; missing data is not breaching) that notifies topic.
func newAlarm(scope constructs.Construct, id string, topic awssns.ITopic, props *awscloudwatch.AlarmProps) awscloudwatch.Alarm {
	p := *props
	if p.EvaluationPeriods == nil {
		p.EvaluationPeriods = jsii.Number(1)
	}
	p.ComparisonOperator = awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD
	p.TreatMissingData = awscloudwatch.TreatMissingData_NOT_BREACHING
	a := awscloudwatch.NewAlarm(scope, jsii.String(id), &p)
	a.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))
	return a
}

// metric5xx is the API's 5xx count.
func (a *API) metric5xx(o *awscloudwatch.MetricOptions) awscloudwatch.IMetric {
	if a.HTTP != nil {
		return a.HTTP.MetricServerError(o)
	}
	return a.REST.MetricServerError(o)
}

// apiMetrics are the API's request count, 4xx, 5xx and latency.
func (a *API) apiMetrics(period awscdk.Duration) (count, c4xx, c5xx, latencyP99 awscloudwatch.IMetric) {
	sum := &awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Sum")}
	p99 := &awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("p99")}
	if a.HTTP != nil {
		return a.HTTP.MetricCount(sum), a.HTTP.MetricClientError(sum), a.HTTP.MetricServerError(sum), a.HTTP.MetricLatency(p99)
	}
	return a.REST.MetricCount(sum), a.REST.MetricClientError(sum), a.REST.MetricServerError(sum), a.REST.MetricLatency(p99)
}

// search is a CloudWatch SEARCH expression (its time series, labelled).
func search(query, stat string, period awscdk.Duration, label string) awscloudwatch.IMetric {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   jsii.String(fmt.Sprintf("SEARCH('%s', '%s', %d)", query, stat, int(*period.ToSeconds(nil)))),
		Label:        jsii.String(label),
		Period:       period,
		UsingMetrics: &map[string]awscloudwatch.IMetric{},
	})
}

// sumSearch is the sum of a SEARCH expression's time series.
func sumSearch(query string, period awscdk.Duration, label string) awscloudwatch.IMetric {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   jsii.String(fmt.Sprintf("SUM(SEARCH('%s', 'Sum', %d))", query, int(*period.ToSeconds(nil)))),
		Label:        jsii.String(label),
		Period:       period,
		UsingMetrics: &map[string]awscloudwatch.IMetric{},
	})
}

// emfCount is the SEARCH query of one of the function's per-channel counts.
func emfCount(metric string) string {
	return fmt.Sprintf(`{%s,%s} MetricName="%s"`, MetricsNamespace, DimensionChannelType, metric)
}

func (o *Observability) dashboard(cfg Config, w watched, parked awscloudwatch.IMetric, one, five awscdk.Duration) awscloudwatch.Dashboard {
	graph := func(title string, left ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Left: &left, Width: jsii.Number(8), Height: jsii.Number(6)})
	}
	sum := func(p awscdk.Duration) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: p, Statistic: jsii.String("Sum")}
	}
	count, c4xx, c5xx, latency := w.api.apiMetrics(five)
	api, worker := w.fns.API.Function, w.fns.Worker.Function
	messages := []awscloudwatch.IMetric{}
	for _, m := range []string{MetricMessagesAccepted, MetricMessagesSent, MetricMessagesDelivered, MetricMessagesFailed} {
		messages = append(messages, sumSearch(emfCount(m), five, m))
	}
	byChannel := []awscloudwatch.IMetric{}
	for _, m := range []string{MetricMessagesAccepted, MetricMessagesDelivered, MetricMessagesFailed} {
		byChannel = append(byChannel, search(emfCount(m), "Sum", five, m+" ${PROP('Dim."+DimensionChannelType+"')}"))
	}
	latencyQuery := fmt.Sprintf(`Namespace="%s" MetricName="%s"`, MetricsNamespace, MetricDispatchLatency)
	tenantQueues := fmt.Sprintf(`{AWS/SQS,QueueName} MetricName="%%s" "%s"`, strings.TrimSuffix(tenantQueuesPattern(cfg.NamePrefix), "_*"))
	alarms := make([]awscloudwatch.IAlarm, 0, len(o.Alarms))
	for _, a := range o.Alarms {
		alarms = append(alarms, a)
	}
	rows := [][]awscloudwatch.IWidget{
		{awscloudwatch.NewTextWidget(&awscloudwatch.TextWidgetProps{
			Markdown: jsii.String("# Switchboard (" + cfg.NamePrefix + ")\nAPI, the two lambdalith functions, the work queues and the messages. " +
				"Siloed tenants' queue alarms live in their own stacks; their queues are graphed at the bottom."),
			Width: jsii.Number(24), Height: jsii.Number(2),
		})},
		{awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
			Title: jsii.String("Alarms"), Alarms: &alarms, Width: jsii.Number(24), Height: jsii.Number(4),
		})},
		{
			graph("API requests (5 min)", count, c4xx, c5xx),
			graph("API latency p99 (ms)", latency),
			graph("Messages (all channels, 5 min)", messages...),
		},
		{
			graph("Messages by channel type (5 min)", byChannel...),
			graph("Dispatch latency (ms)",
				search(latencyQuery, "p50", five, "p50 ${PROP('Dim."+DimensionChannelType+"')}"),
				search(latencyQuery, "p99", five, "p99 ${PROP('Dim."+DimensionChannelType+"')}")),
			graph("Parked outbox entries (5 min)", parked),
		},
		{
			graph("Invocations (5 min)", api.MetricInvocations(sum(five)), worker.MetricInvocations(sum(five))),
			graph("Errors and throttles (5 min)", api.MetricErrors(sum(five)), worker.MetricErrors(sum(five)),
				api.MetricThrottles(sum(five)), worker.MetricThrottles(sum(five))),
			graph("Duration p99 (ms)",
				api.MetricDuration(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("p99")}),
				worker.MetricDuration(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("p99")})),
		},
		{
			graph("Pooled work queue: visible and in flight",
				w.pooled.Queue.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: one, Statistic: jsii.String("Maximum")}),
				w.pooled.Queue.MetricApproximateNumberOfMessagesNotVisible(&awscloudwatch.MetricOptions{Period: one, Statistic: jsii.String("Maximum")})),
			graph("Pooled work queue: age of oldest message (s)",
				w.pooled.Queue.MetricApproximateAgeOfOldestMessage(&awscloudwatch.MetricOptions{Period: one, Statistic: jsii.String("Maximum")})),
			graph("Pooled DLQ depth",
				w.pooled.DLQ.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: one, Statistic: jsii.String("Maximum")})),
		},
		{
			graph("Siloed tenant queues: visible",
				search(fmt.Sprintf(tenantQueues, "ApproximateNumberOfMessagesVisible"), "Maximum", one, "${PROP('Dim.QueueName')}")),
			graph("Siloed tenant queues: age of oldest message (s)",
				search(fmt.Sprintf(tenantQueues, "ApproximateAgeOfOldestMessage"), "Maximum", one, "${PROP('Dim.QueueName')}")),
		},
	}
	widgets := make([]*[]awscloudwatch.IWidget, 0, len(rows))
	for i := range rows {
		widgets = append(widgets, &rows[i])
	}
	return awscloudwatch.NewDashboard(o.Scope, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName:   jsii.String(cfg.NamePrefix),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
		Widgets:         &widgets,
	})
}
