package work

import (
	"context"
	"fmt"
)

// Job is a scheduled job, run by name from an EventBridge rule or Scheduler
// schedule in Lambda mode and from a ticker in local mode. Jobs are idempotent:
// running one twice, or late, does no harm.
type Job func(ctx context.Context) error

// Jobs maps job names ("outbox-sweep") to jobs.
type Jobs struct{ t table[Job] }

// NewJobs returns an empty job table.
func NewJobs() *Jobs { return &Jobs{t: newTable[Job]("job")} }

// Register adds a job; a name registered twice panics (a wiring bug).
func (j *Jobs) Register(name string, job Job) { j.t.add(name, job) }

// ErrUnknownJob is returned for a job name with no job.
var ErrUnknownJob = fmt.Errorf("work: unknown job")

// Run runs the named job.
func (j *Jobs) Run(ctx context.Context, name string) error {
	job, ok := j.t.get(name)
	if !ok {
		return fmt.Errorf("run job %q: %w", name, ErrUnknownJob)
	}
	return job(ctx)
}

// Names lists the registered jobs, sorted.
func (j *Jobs) Names() []string { return j.t.names() }
