package main

// nag.go: cdk-nag's AWS Solutions rules over every stack (nested stacks
// included), and the exceptions this design makes, each with its reason.
// Tests assert that no finding is left unsuppressed.

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// ApplyNag adds the AWS Solutions pack to scope (normally the App). It runs
// as a read-only aspect, after the mutating ones, at synthesis; findings
// become error and warning annotations (and `cdk synth` fails on errors).
func ApplyNag(scope constructs.IConstruct) {
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}),
		&awscdk.AspectOptions{Priority: awscdk.AspectPriority_READONLY()})
}

// suppression is a justified exception: rule id, reason, and optionally the
// finding ids (e.g. "Resource::*") it covers.
type suppression struct {
	rule      string
	reason    string
	appliesTo []string
}

// suppress records suppressions on c and its children.
func suppress(c constructs.IConstruct, s ...suppression) {
	list := make([]*cdknag.NagPackSuppression, 0, len(s))
	for _, x := range s {
		n := &cdknag.NagPackSuppression{Id: jsii.String(x.rule), Reason: jsii.String(x.reason)}
		if len(x.appliesTo) > 0 {
			at := make([]any, 0, len(x.appliesTo))
			for _, a := range x.appliesTo {
				at = append(at, a)
			}
			n.AppliesTo = &at
		}
		list = append(list, n)
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &list, jsii.Bool(true))
}

// Rule ids of the AWS Solutions pack this design makes exceptions to.
const (
	NagIAM4  = "AwsSolutions-IAM4"  // an AWS managed policy
	NagIAM5  = "AwsSolutions-IAM5"  // a wildcard in an action or a resource
	NagAPIG2 = "AwsSolutions-APIG2" // REST API without request validation
	NagAPIG3 = "AwsSolutions-APIG3" // REST stage without a WAF web ACL
	NagAPIG4 = "AwsSolutions-APIG4" // route or method without an API Gateway authorizer
	NagCOG4  = "AwsSolutions-COG4"  // REST method without a Cognito authorizer
)

// appAuthReason says why the routes have no API Gateway authorizer.
const appAuthReason = "Authentication and authorization are the application's, on every route: API keys, " +
	"the operator key and EdDSA access tokens are verified in the function, each action is decided by Cedar " +
	"policies (ADR 0009, 0010), failed attempts are throttled (ADR 0011), provider webhooks are verified by " +
	"their signatures; /healthz and /.well-known/jwks.json are public by design. The platform issues its own " +
	"credentials: there is no Cognito user pool or JWT issuer for API Gateway to check."

// suppressNagFindings records the design's exceptions, each scoped to the
// construct and, for IAM5, to the exact finding.
func (s *Switchboard) suppressNagFindings(cfg Config) {
	tableID := *s.Stack.GetLogicalId(s.Table.Node().DefaultChild().(awsdynamodb.CfnTable))
	for _, l := range s.Functions.All() {
		suppress(l.Role,
			suppression{NagIAM5, "Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no " +
				"resource-level permissions; they are the only actions on Resource *.", []string{"Resource::*"}},
			suppression{NagIAM5, "The store queries the table's global secondary indexes (the outbox index and the " +
				"list indexes of dynamostore.TableInput); the grant covers this table's indexes only.",
				[]string{"Resource::<" + tableID + ".Arn>/index/*"}},
			suppression{NagIAM5, "DynamoDB's documented key permissions for a table encrypted with a customer " +
				"managed key; the statement names the table key only and holds only for calls made through " +
				"DynamoDB (kms:ViaService).", []string{"Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"}},
			suppression{NagIAM5, "The runtime contract with the function: one parameter per siloed tenant under " +
				TenantResourcesPath(cfg.NamePrefix) + ", read by tenant id (ssm:GetParameter only). Tenants come " +
				"and go with the manifest; the path stays.",
				[]string{"Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter" +
					TenantResourcesPath(cfg.NamePrefix) + "*"}},
			suppression{NagIAM5, "Every siloed tenant's work queue and DLQ and no other queue: they are named " +
				tenantQueuesPattern(cfg.NamePrefix) + " (<prefix>-<tenant id>-work/-dlq). One statement for " +
				"hundreds of tenants (their ARNs would exceed a role's policy size limit); each queue is " +
				"encrypted with its tenant's key, whose key policy names these roles.",
				[]string{"Resource::arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:" + tenantQueuesPattern(cfg.NamePrefix)}},
		)
	}
	if s.API.HTTP != nil {
		suppress(s.API.HTTP, suppression{rule: NagAPIG4, reason: appAuthReason})
		return
	}
	suppress(s.API.REST,
		suppression{rule: NagAPIG4, reason: appAuthReason},
		suppression{rule: NagCOG4, reason: appAuthReason},
		suppression{rule: NagAPIG2, reason: "The function validates every request strictly (unknown fields, " +
			"types, validator tags) and answers problem+json with a code per field (ADR 0005); API Gateway " +
			"request models would duplicate the contract and answer in another format."},
		suppression{rule: NagAPIG3, reason: "The REST API is the LocalStack variant (httpApi=false); AWS " +
			"deployments use the HTTP API, which takes no WAF web ACL. The stage is throttled and failed " +
			"authentication is throttled per key and address in the function (ADR 0011)."},
		suppression{rule: NagIAM4, reason: "AmazonAPIGatewayPushToCloudWatchLogs is AWS's policy for the " +
			"region's API Gateway logging role, which REST access and execution logs require; the role is " +
			"assumed by API Gateway only.",
			appliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}},
	)
}
