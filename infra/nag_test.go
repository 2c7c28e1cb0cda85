package main

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// TestNag: the AWS Solutions pack finds nothing it was not told why
// (nag.go), in both shapes and in the siloed tenant's stack.
func TestNag(t *testing.T) {
	for name, f := range map[string]func(*testing.T) *fixture{"aws": awsFixture, "localstack": localFixture} {
		t.Run(name, func(t *testing.T) {
			for _, finding := range f(t).nagErrs {
				t.Errorf("unsuppressed cdk-nag finding: %s", finding)
			}
		})
	}
}

// TestNagSeesNestedStacks proves the check above can fail: a queue without
// a DLQ or TLS in a nested stack is reported on the parent, and a
// suppression removes exactly its rule.
func TestNagSeesNestedStacks(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	stack := awscdk.NewStack(app, jsii.String("Probe"), nil)
	nested := awscdk.NewNestedStack(stack, jsii.String("Nested"), nil)
	q := awssqs.NewQueue(nested, jsii.String("Bare"), &awssqs.QueueProps{Encryption: awssqs.QueueEncryption_SQS_MANAGED})
	suppress(q, suppression{rule: "AwsSolutions-SQS3", reason: "a probe of the suppression path"})
	ApplyNag(app)
	app.Synth(nil)
	got := nagFindings(stack)
	if len(got) != 1 || !strings.Contains(got[0], "/Probe/Nested/Bare/") || !strings.Contains(got[0], "AwsSolutions-SQS4") {
		t.Errorf("findings = %q, want exactly the nested queue's SQS4", got)
	}
}

// TestNoWildcardActionOnWildcardResource: no allow statement of any policy
// (IAM, key, queue, topic; main and tenant stacks, both shapes) grants
// action * on resource *.
func TestNoWildcardActionOnWildcardResource(t *testing.T) {
	for name, f := range map[string]func(*testing.T) *fixture{"aws": awsFixture, "localstack": localFixture} {
		t.Run(name, func(t *testing.T) {
			fx := f(t)
			docs := map[string]tmpl{"main": fx.main}
			for id, n := range fx.nested {
				docs[id] = n
			}
			n := 0
			for doc, tp := range docs {
				found := map[string][]map[string]any{}
				statements(tp.doc["Resources"], doc, found)
				for where, list := range found {
					for _, s := range list {
						n++
						if _, ok := s["NotAction"]; ok {
							t.Errorf("%s: NotAction statement %v", where, s)
						}
						if s["Effect"] != "Allow" {
							continue
						}
						if contains(strs(s["Action"]), "*") && (contains(strs(s["Resource"]), "*") || s["Resource"] == nil) {
							t.Errorf("%s: action * on resource *: %v", where, s)
						}
					}
				}
			}
			if n < 10 {
				t.Errorf("found only %d statements; the walk is broken", n)
			}
		})
	}
}
