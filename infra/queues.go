package main

// queues.go: work queues. The lambdalith's work path (ADR 0003) hands each
// work item to a standard SQS queue; a queue's dead-letter queue keeps what
// failed maxReceiveCount receives. The pooled tenants share one queue pair;
// a siloed tenant has its own (tenants.go).

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Work queue sizing.
const (
	// WorkVisibilityFactor times the worker's timeout is the queue's
	// visibility timeout: AWS's recommendation for an SQS event source
	// (at least six times the function timeout), so that a batch the
	// poller received while the function was throttled is not redelivered
	// while it may still run.
	WorkVisibilityFactor = 6
	// WorkMaxReceiveCount is how often SQS delivers a message before it
	// goes to the DLQ. A failing work item does not count here: the worker
	// puts it back into the outbox with a backoff and acknowledges the
	// message (work.Requeuer), and parks it after work.DefaultMaxAttempts.
	// Receives count only when a batch could not report its records: the
	// function crashed or timed out, a record was undecodable, or records
	// were left unrun near the deadline. Five such receives mean a poison
	// message or a systematic timeout: the DLQ and its alarm.
	WorkMaxReceiveCount = 5
	// DLQRetentionDays keeps dead letters for the longest SQS allows, 14
	// days, the time an operator has to redrive them.
	DLQRetentionDays = 14
)

// WorkQueues is a work queue and its DLQ.
type WorkQueues struct {
	Queue awssqs.Queue
	DLQ   awssqs.Queue
}

// PooledQueueName and PooledDLQName are the shared queues' names.
func PooledQueueName(prefix string) string { return prefix + "-work" }

// PooledDLQName is the shared DLQ's name.
func PooledDLQName(prefix string) string { return prefix + "-work-dlq" }

// newWorkQueues makes a queue pair in scope with the ids WorkQueue and
// WorkDlq. key nil: SQS managed encryption (SSE-SQS); else SSE-KMS with key.
// Both queues refuse requests without TLS.
func newWorkQueues(scope constructs.Construct, queueName, dlqName string, key awskms.IKey) *WorkQueues {
	enc := awssqs.QueueEncryption_SQS_MANAGED
	if key != nil {
		enc = awssqs.QueueEncryption_KMS
	}
	dlq := awssqs.NewQueue(scope, jsii.String("WorkDlq"), &awssqs.QueueProps{
		QueueName:           jsii.String(dlqName),
		RetentionPeriod:     awscdk.Duration_Days(jsii.Number(DLQRetentionDays)),
		Encryption:          enc,
		EncryptionMasterKey: key,
		EnforceSSL:          jsii.Bool(true),
	})
	queue := awssqs.NewQueue(scope, jsii.String("WorkQueue"), &awssqs.QueueProps{
		QueueName:           jsii.String(queueName),
		VisibilityTimeout:   awscdk.Duration_Seconds(jsii.Number(WorkVisibilityFactor * WorkerTimeoutSeconds)),
		Encryption:          enc,
		EncryptionMasterKey: key,
		EnforceSSL:          jsii.Bool(true),
		DeadLetterQueue: &awssqs.DeadLetterQueue{
			Queue:           dlq,
			MaxReceiveCount: jsii.Number(WorkMaxReceiveCount),
		},
	})
	return &WorkQueues{Queue: queue, DLQ: dlq}
}
