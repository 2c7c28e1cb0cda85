package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// Recover turns a panic below it into an internal error (500 errors.internal),
// logged with its stack, so that one call (one batch item) fails alone.
func Recover(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, call *Call) (res Result, err error) {
			defer func() {
				if p := recover(); p != nil {
					log.ErrorContext(ctx, "panic", "endpoint", call.Endpoint.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					res, err = Result{}, errs.New(errs.KindInternal, errs.CodeInternal)
				}
			}()
			return next(ctx, call)
		}
	}
}
