// Command infra is the Switchboard AWS CDK app (run by the CDK CLI through
// cdk.json: `go run ./infra`). It reads its configuration from the CDK
// context (see the Ctx* keys and cdk.json) and defines one stack,
// "Switchboard"; stack.go holds the resources.
//
// Typical use, from the repository root:
//
//	make synth                      # cdk synth --quiet
//	make deploy-localstack          # cdklocal deploy, see localstack/README.md
//	infra/node_modules/.bin/cdk deploy -c operatorKeySha256=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
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
	if err != nil {
		fmt.Fprintf(os.Stderr, "infra: %v\n", err)
		closeJSII()
		os.Exit(1)
	}
	// Environment-agnostic on purpose: the same template deploys to any
	// account/region (and to LocalStack); nothing here needs lookups.
	NewSwitchboardStack(app, StackID, &SwitchboardStackProps{Config: cfg})
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
