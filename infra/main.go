// Command infra is the Switchboard AWS CDK app (run by the CDK CLI through
// cdk.json: `go run ./infra`). It reads its configuration from the CDK
// context (see the Ctx* keys and cdk.json) and the tenants manifest
// (infra/tenants.json), defines one stack, "Switchboard" (with a nested
// stack per siloed tenant), and checks it with cdk-nag's AWS Solutions
// pack. stack.go assembles the stack from one file per concern.
//
// Typical use, from the repository root (`make help` lists the targets):
//
//	make synth                      # cdk synth: template in dist/cdk.out, no AWS needed
//	make diff                       # cdk diff against the deployed stack
//	make deploy OPERATOR_KEY_SHA256=<hex>
//	make localstack-up localstack-deploy   # see localstack/README.md
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// StackID is the construct id and CloudFormation stack name.
const StackID = "Switchboard"

func main() {
	app := awscdk.NewApp(nil)
	cfg, err := ConfigFromContext(app.Node())
	if err == nil {
		err = cfg.Validate()
	}
	var tenants TenantsManifest
	if err == nil {
		tenants, err = LoadTenantsManifest(cfg.TenantsManifest)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "infra: %v\n", err)
		closeJSII()
		os.Exit(1)
	}
	// Environment-agnostic on purpose: the same template deploys to any
	// account/region (and to LocalStack); nothing here needs lookups.
	NewSwitchboardStack(app, StackID, &SwitchboardStackProps{Config: cfg, Tenants: tenants})
	ApplyNag(app)
	app.Synth(nil)
	closeJSII()
}

// closeJSII stops the node child process and removes its temp dir.
// jsii-runtime-go v1.116.0 waits for the child twice (in Close and in a
// watcher goroutine); the loser of that race prints a spurious "Runtime
// process exited abnormally: waitid: no child processes" after a successful
// synth. The template is already written, so stderr is muted for the
// shutdown.
func closeJSII() {
	if devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		os.Stderr = devNull
	}
	jsii.Close()
}
