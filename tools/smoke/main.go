// Command smoke is Switchboard's smoke test for any deployment: it onboards
// a test tenant, sends sandbox sms and email messages, checks their final
// statuses and the signed webhooks of a subscription, and cleans up what
// the API lets it remove. It prints its progress and ends with one PASS or
// FAIL line; the exit code is 0 on PASS, 1 on FAIL, 2 for bad settings.
//
//	make smoke BASE_URL=http://127.0.0.1:8080 OPERATOR_KEY=$(cat .data/operator.key)
//	make smoke BASE_URL=https://api.example.com OPERATOR_KEY=... RECEIVER=url=https://hook.example.com/
//	make smoke BASE_URL=https://api.example.com OPERATOR_KEY=... RECEIVER=none
//
// RECEIVER says how the deployment reaches the webhook receiver: local (the
// default) starts one on a local port (local mode); url=<public URL> starts
// one on RECEIVER_LISTEN (default 127.0.0.1:9099) that the user exposes at
// that URL; none subscribes an unreachable URL and checks list-deliveries.
// The work is in package smoke (tools/smoke/smoke).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchboard-dev/switchboard/tools/smoke/smoke"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first interrupt stops the run (the cleanup still runs); a
		// second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code, _ := smoke.Main(ctx, os.Args[1:], os.Getenv, os.Stdout)
	os.Exit(code)
}
