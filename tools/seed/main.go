// Command seed creates demo data on a running Switchboard (local mode by
// default): two pooled and two siloed tenants, each with the scopes
// Global (the root) > EU > France and Global > US, a service account of every
// built-in role at the root and at EU with an API key each, and a sandbox SMS
// channel in France and in US. It prints every id and key and curl lines that
// show the access rules.
//
//	make run     # in one terminal
//	make seed    # in another (SEED_PREFIX=Demo2 make seed for a second set)
//
// A run again with the same prefix replays the first run (Idempotency-Keys):
// it creates nothing new and prints the same keys.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/tools/seed/seed"
)

func main() {
	baseURL := flag.String("url", envOr("SWITCHBOARD_URL", "http://127.0.0.1:"+envOr("PORT", "8080")), "Switchboard base URL (or SWITCHBOARD_URL; default http://127.0.0.1:$PORT, PORT 8080)")
	opKey := flag.String("operator-key", "", "operator key (default: SWITCHBOARD_OPERATOR_KEY, else $SWITCHBOARD_DATA_DIR/operator.key, else .data/operator.key)")
	prefix := flag.String("prefix", envOr("SEED_PREFIX", "Demo"), "tenant name prefix; the same prefix again replays the first run (or SEED_PREFIX)")
	wait := flag.Duration("wait", seed.ActiveTimeout, "how long to wait for each tenant to become active")
	flag.Parse()

	key, from, err := operatorKey(*opKey)
	if err != nil {
		fmt.Fprintf(os.Stderr, "seed: %v\n", err)
		os.Exit(1)
	}
	if from != "" {
		fmt.Printf("Operator key from %s\n", from)
	}
	seed.ActiveTimeout = *wait

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client := &http.Client{Timeout: 30 * time.Second}
	if _, err := seed.Seed(ctx, client, *baseURL, key, *prefix, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "seed: %v\n", err)
		os.Exit(1)
	}
}

// operatorKey finds the operator key: the flag, SWITCHBOARD_OPERATOR_KEY,
// then the file local mode keeps in its data dir. from names the file.
func operatorKey(flagValue string) (key, from string, err error) {
	if k := strings.TrimSpace(flagValue); k != "" {
		return k, "", nil
	}
	if k := strings.TrimSpace(os.Getenv("SWITCHBOARD_OPERATOR_KEY")); k != "" {
		return k, "", nil
	}
	dir := envOr("SWITCHBOARD_DATA_DIR", ".data")
	path := filepath.Join(dir, "operator.key")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", "", fmt.Errorf("no operator key: %s does not exist and neither -operator-key nor SWITCHBOARD_OPERATOR_KEY is set\n"+
			"  what to do: start local mode with `make run` from this directory (it generates the key), or pass the key it printed", path)
	case err != nil:
		return "", "", fmt.Errorf("read operator key: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", "", fmt.Errorf("operator key file %s is empty", path)
	}
	return k, path, nil
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}
