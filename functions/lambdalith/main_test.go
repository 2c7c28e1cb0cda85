package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// The tests of this package run the production wiring (Build) and the built
// binary itself. DynamoDB tests need DynamoDB Local: `make test` starts it and
// sets SWITCHBOARD_TEST_DYNAMODB_ENDPOINT; without it they fail (never skip).

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the lambdalith once per test run.
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lambdalith-test-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "lambdalith")
		out, err := exec.Command("go", "build", "-tags", "lambda.norpc,nopebble", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// dynamoEndpoint returns the DynamoDB Local endpoint or fails the test.
func dynamoEndpoint(t testing.TB) string {
	t.Helper()
	e, err := dynamotest.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// testOutboxShards is the outbox shard count of the tests that build on
// DynamoDB Local (buildOn): several shards, far fewer than production's.
const testOutboxShards = "16"

// uniqueTable names a fresh table for one test.
func uniqueTable() string {
	return "sb-test-" + strings.ToLower(strings.TrimPrefix(ids.NewULIDs().New("t"), "t_"))
}

// client is a tiny API client for the walkthroughs.
// buildOn builds the production wiring on the embedded store or on DynamoDB
// Local (a fresh table, with the test clients' credentials), with env as the
// rest of its environment, and closes it at the end of the test.
func buildOn(t *testing.T, store string, env map[string]string) *App {
	t.Helper()
	if store == EnginePebble { // the embedded store on its other engine
		store, env["SWITCHBOARD_ENGINE"] = "embedded", EnginePebble
	}
	env["SWITCHBOARD_STORE"] = store
	if env["SWITCHBOARD_DATA_DIR"] == "" {
		env["SWITCHBOARD_DATA_DIR"] = t.TempDir()
	}
	if store == "dynamodb" {
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamoEndpoint(t))
		// DynamoDB Local keeps tables per access key and region: use the test clients'.
		t.Setenv("AWS_ACCESS_KEY_ID", dynamotest.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", dynamotest.SecretKey)
		t.Setenv("AWS_REGION", dynamotest.Region)
		if env["SWITCHBOARD_TABLE"] == "" {
			env["SWITCHBOARD_TABLE"] = uniqueTable()
		}
		// Sweeps and the parked list query every outbox shard; these tests
		// check behaviour, not capacity (BenchmarkCapacity measures the
		// production count), so a few shards keep them fast.
		if env["SWITCHBOARD_OUTBOX_SHARDS"] == "" {
			env["SWITCHBOARD_OUTBOX_SHARDS"] = testOutboxShards
		}
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	app, err := Build(context.Background(), cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

type client struct {
	t    testing.TB
	base string
	h    http.Handler // in-process when set
}

type reply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (c *client) call(path, token, body string, hdr ...string) reply {
	c.t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	if c.h == nil {
		var err error
		req, err = http.NewRequest("POST", c.base+path, strings.NewReader(body))
		if err != nil {
			c.t.Fatal(err)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	var status int
	var header http.Header
	var raw []byte
	if c.h != nil {
		w := httptest.NewRecorder()
		c.h.ServeHTTP(w, req)
		status, header, raw = w.Code, w.Header(), w.Body.Bytes()
	} else {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			c.t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ = io.ReadAll(resp.Body)
		status, header = resp.StatusCode, resp.Header
	}
	r := reply{Status: status, Header: header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

func (c *client) must(status int, path, token, body string, hdr ...string) reply {
	c.t.Helper()
	r := c.call(path, token, body, hdr...)
	if r.Status != status {
		c.t.Fatalf("%s: want %d, got %d %s", path, status, r.Status, r.Raw)
	}
	return r
}

// eventually polls f until it returns true or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func str(v any) string { s, _ := v.(string); return s }

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
