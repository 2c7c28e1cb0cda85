package smoke

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Exit codes of Main.
const (
	ExitPass   = 0
	ExitFail   = 1
	ExitConfig = 2 // a missing or bad setting; nothing was called
)

// ParseConfig reads a run's settings from args (flags) and getenv (the
// variables `make smoke` passes: BASE_URL, OPERATOR_KEY, RECEIVER,
// RECEIVER_LISTEN, TIMEOUT); a flag wins over its variable.
func ParseConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	fs.SetOutput(usage)
	base := fs.String("base-url", env("BASE_URL"), "the deployment's API base URL (or BASE_URL), e.g. http://127.0.0.1:8080")
	opKey := fs.String("operator-key", "", "the deployment's operator key (default OPERATOR_KEY; a flag shows in the process list, the variable does not)")
	receiver := fs.String("receiver", env("RECEIVER"), "how the deployment reaches the webhook receiver (or RECEIVER): local, url=<public URL>, none")
	listen := fs.String("receiver-listen", env("RECEIVER_LISTEN"), "the receiver's listen address (or RECEIVER_LISTEN); default "+
		DefaultLocalListen+" for local, "+DefaultURLListen+" for url=")
	timeout := fs.String("timeout", env("TIMEOUT"), "how long the run may take before cleanup (or TIMEOUT): seconds or a Go duration; default 60s")
	unreachable := fs.String("unreachable-url", DefaultUnreachableURL, "the subscription URL of RECEIVER=none: one the deployment cannot deliver to")
	fs.Usage = func() {
		fmt.Fprintln(usage, "Usage: make smoke BASE_URL=... OPERATOR_KEY=... [RECEIVER=local|url=<public URL>|none] [TIMEOUT=60s]")
		fmt.Fprintln(usage, "   or: go run ./tools/smoke [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := Config{BaseURL: *base, OperatorKey: strings.TrimSpace(*opKey), Listen: *listen, UnreachableURL: *unreachable}
	if cfg.OperatorKey == "" {
		cfg.OperatorKey = env("OPERATOR_KEY")
	}
	spec, err := ParseReceiver(*receiver)
	if err != nil {
		return Config{}, err
	}
	cfg.Receiver = spec
	if cfg.Timeout, err = ParseTimeout(*timeout); err != nil {
		return Config{}, err
	}
	if err := checkHTTPURL(cfg.UnreachableURL); err != nil {
		return Config{}, fmt.Errorf("-unreachable-url %q: %w", cfg.UnreachableURL, err)
	}
	return cfg, nil
}

// ParseTimeout reads TIMEOUT: "" (DefaultTimeout), whole seconds ("90"),
// or a Go duration ("90s", "2m").
func ParseTimeout(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultTimeout, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		s = strconv.Itoa(n) + "s"
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("TIMEOUT %q: use seconds (60) or a duration (90s, 2m)", s)
	}
	return d, nil
}

// Main is the command: it parses the settings, runs the smoke test with
// progress on stdout and returns the exit code (ExitPass, ExitFail,
// ExitConfig) and what the run found (zero when it did not start).
func Main(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) (int, Result) {
	cfg, err := ParseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return ExitPass, Result{}
	}
	if err == nil && (strings.TrimSpace(cfg.BaseURL) == "" || cfg.OperatorKey == "") {
		err = errors.New("BASE_URL and OPERATOR_KEY are required: make smoke BASE_URL=http://127.0.0.1:8080 OPERATOR_KEY=$(cat .data/operator.key)")
	}
	if err != nil {
		fmt.Fprintf(stdout, "FAIL smoke test not started: %v\n", err)
		return ExitConfig, Result{Err: err}
	}
	cfg.Out = stdout
	res := Run(ctx, cfg)
	if !res.Passed {
		return ExitFail, res
	}
	return ExitPass, res
}
