package work

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Job is a scheduled job, run by name from an EventBridge rule or Scheduler
// schedule in Lambda mode and from a ticker in local mode. Jobs are idempotent:
// running one twice, or late, does no harm.
type Job func(ctx context.Context) error

// Jobs maps job names ("outbox-sweep") to jobs.
type Jobs struct {
	mu   sync.RWMutex
	jobs map[string]Job
}

// NewJobs returns an empty job table.
func NewJobs() *Jobs { return &Jobs{jobs: map[string]Job{}} }

// Register adds a job; a name registered twice panics (a wiring bug).
func (j *Jobs) Register(name string, job Job) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, dup := j.jobs[name]; dup {
		panic(fmt.Sprintf("work: job %q registered twice", name))
	}
	j.jobs[name] = job
}

// ErrUnknownJob is returned for a job name with no job.
var ErrUnknownJob = fmt.Errorf("work: unknown job")

// Run runs the named job.
func (j *Jobs) Run(ctx context.Context, name string) error {
	j.mu.RLock()
	job, ok := j.jobs[name]
	j.mu.RUnlock()
	if !ok {
		return fmt.Errorf("run job %q: %w", name, ErrUnknownJob)
	}
	return job(ctx)
}

// Names lists the registered jobs, sorted.
func (j *Jobs) Names() []string {
	j.mu.RLock()
	defer j.mu.RUnlock()
	out := make([]string, 0, len(j.jobs))
	for n := range j.jobs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
