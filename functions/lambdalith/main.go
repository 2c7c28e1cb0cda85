// Command lambdalith is Switchboard's one binary.
//
// With AWS_LAMBDA_RUNTIME_API set it runs in Lambda mode and answers API
// Gateway (HTTP API v2 and REST v1), SQS and EventBridge invocations through
// one router; otherwise it runs local mode: an HTTP server on 127.0.0.1 over
// the embedded store (or DynamoDB with SWITCHBOARD_STORE=dynamodb), with
// in-process workers. Configuration is plain environment; see the README.
//
// main stays thin: configuration, logger, Build (the production wiring that
// tests run too), then serve.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/switchboard-dev/switchboard/modules/kernel/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lambdalith:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	logger := logging.New(stderr, cfg.LogLevel)
	app, err := Build(ctx, cfg, Deps{Logger: logger})
	if err != nil {
		return err
	}
	if cfg.Lambda {
		lambda.Start(app.Router) // never returns
		return nil
	}
	return serveLocal(ctx, app, stdout)
}
