package rpc

import (
	"context"
	"errors"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// UnitOfWork runs each command in a unit of work (package uow): the handler
// stages its writes, the runner commits them once with the idempotency record
// and hands the committed work to the relay; a version conflict re-runs the
// handler. Failures of the commit map to the error vocabulary: too large
// (413), still conflicting (409 errors.concurrency.conflict), a malformed
// commit or a panic (500: a bug, a retry cannot help), anything else from the
// store's commit (503). The handler's own errors pass as they are (an
// unclassified one, such as a failed read, is a 500).
// eventstore.ErrDuplicate passes through for Idempotency to replay. Queries
// run without a unit.
func UnitOfWork(r *uow.Runner) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, call *Call) (Result, error) {
			if call.Endpoint.Kind != KindCommand {
				return next(ctx, call)
			}
			var res Result
			handled := false
			err := r.Run(ctx, invocation.From(ctx).TenantID(), func(ctx context.Context) error {
				var err error
				res, err = next(ctx, call)
				handled = err == nil
				return err
			}, func(ctx context.Context, c *eventstore.Commit) error {
				if call.record == nil {
					return nil
				}
				rec, err := call.record(ctx, res)
				c.Idempotency = rec
				return err
			})
			switch {
			case err == nil:
				return res, nil
			case errors.Is(err, uow.ErrPanic):
				return Result{}, errs.New(errs.KindInternal, errs.CodeInternal).Wrap(err)
			case !handled:
				if errors.Is(err, eventstore.ErrConflict) {
					return Result{}, errs.New(errs.KindConflict, errs.CodeConcurrency).Wrap(err)
				}
				return Result{}, err
			case errors.Is(err, eventstore.ErrDuplicate):
				return Result{}, err
			case errors.Is(err, eventstore.ErrConflict):
				return Result{}, errs.New(errs.KindConflict, errs.CodeConcurrency).Wrap(err)
			case errors.Is(err, eventstore.ErrTooLarge):
				return Result{}, errs.New(errs.KindTooLarge, errs.CodeTooLarge).With("limit", eventstore.MaxItemBytes).Wrap(err)
			case errors.Is(err, eventstore.ErrInvalid):
				return Result{}, errs.New(errs.KindInternal, errs.CodeInternal).Wrap(err)
			case errs.KindOf(err) != errs.KindInternal:
				return Result{}, err
			default:
				return Result{}, errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(err)
			}
		}
	}
}
