// Package dynamotest finds the DynamoDB Local of a test run and builds clients
// and fresh tables (Table) for it. `make test` starts DynamoDB Local and sets
// EndpointEnv; without it the running instance of .ci/dynamodb-local.sh is
// used. Tests that need DynamoDB fail (never skip) when neither is there.
package dynamotest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
)

// EndpointEnv names the DynamoDB endpoint of the tests.
const EndpointEnv = "SWITCHBOARD_TEST_DYNAMODB_ENDPOINT"

// Region and the dummy credentials of test clients. DynamoDB Local keeps the
// tables of each (access key, region) apart, so every client of a run must
// use the same ones.
const (
	Region    = "us-east-1"
	AccessKey = "test"
	SecretKey = "test"
)

// Endpoint returns the DynamoDB endpoint of this test run, or an error that
// says how to start one.
func Endpoint() (string, error) {
	if e := os.Getenv(EndpointEnv); e != "" {
		return e, nil
	}
	if e := scriptEndpoint(); e != "" {
		return e, nil
	}
	return "", fmt.Errorf("DynamoDB Local is not running: run `make test` or `.ci/dynamodb-local.sh start` (or set %s)", EndpointEnv)
}

// scriptEndpoint asks .ci/dynamodb-local.sh for a running instance ("" if none).
func scriptEndpoint() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	out, err := exec.Command("bash", filepath.Join(dir, ".ci", "dynamodb-local.sh"), "endpoint").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Client returns a client of endpoint with the test region and credentials,
// sending through hc when it is not nil.
func Client(endpoint string, hc *http.Client) *dynamodb.Client {
	o := dynamodb.Options{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		BaseEndpoint: aws.String(endpoint),
	}
	if hc != nil {
		o.HTTPClient = hc
	}
	return dynamodb.New(o)
}

// Table creates a table of a fresh name (prefix and the time) on this run's
// DynamoDB Local, with the store's schema, and deletes it when t ends; it
// fails t when there is no DynamoDB Local.
func Table(t testing.TB, prefix string) (*dynamodb.Client, string) {
	t.Helper()
	endpoint, err := Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	client := Client(endpoint, nil)
	table := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dynamostore.EnsureTable(ctx, client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table}) })
	return client, table
}
