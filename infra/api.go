package main

// api.go: API Gateway in front of the API function. An HTTP API (v2,
// payload format 2.0) by default; with httpApi=false a REST API (v1, Lambda
// proxy) instead, which LocalStack offers for free. The lambdalith's
// trigger router decodes both payloads into the same http.Handler. Only the
// path prefixes the handler serves are routed (APIRoutes): anything else is
// answered 404 by API Gateway without invoking the function.

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// API settings.
const (
	// RestStageName is the REST API stage; its URLs end in /prod, and
	// LocalStack's embed it:
	// http://<id>.execute-api.localhost.localstack.cloud:4566/prod/healthz
	RestStageName = "prod"
	// APIRateLimit and APIBurstLimit throttle the whole stage (requests per
	// second, token bucket size): half of a region's default account
	// limits (10,000 and 5,000), so that one deployment cannot exhaust the
	// account's API Gateway quota and excess load is answered 429 before
	// it reaches Lambda. Raise them together with the account quota and the
	// Lambda concurrency quota.
	APIRateLimit  = 5000
	APIBurstLimit = 2500
	// APILogRetention keeps the access logs for a month.
	APILogRetention = awslogs.RetentionDays_ONE_MONTH
)

// APIRoute is a path the lambdalith serves: Exact routes the path itself,
// Proxy everything below it ({proxy+}). Every method goes to the function,
// which answers a wrong method with 405 problem+json.
type APIRoute struct {
	Path  string
	Exact bool
	Proxy bool
}

// APIRoutes are the routes of both API kinds: /commands (a batch) and
// /commands/{name}, /queries/{name}, provider webhooks
// /webhooks/{provider}/{channelId}, /healthz and /.well-known/jwks.json.
var APIRoutes = []APIRoute{
	{Path: "/commands", Exact: true, Proxy: true},
	{Path: "/queries", Proxy: true},
	{Path: "/webhooks", Proxy: true},
	{Path: "/healthz", Exact: true},
	{Path: "/.well-known", Proxy: true},
}

// API is the API Gateway front door.
type API struct {
	// Scope is the construct the parts are made in.
	Scope constructs.Construct
	// Kind is "http" or "rest".
	Kind string
	// ID is the API's id.
	ID *string
	// URL is the base URL, without a trailing slash.
	URL *string
	// Logs holds the access logs.
	Logs awslogs.LogGroup
	// HTTP is the HTTP API (nil with httpApi=false).
	HTTP awsapigatewayv2.HttpApi
	// REST is the REST API (nil with httpApi=true).
	REST awsapigateway.RestApi
}

// newAPI makes the API in front of the API function and sets both
// functions' SWITCHBOARD_PUBLIC_URL (Config.PublicURL, else the API's URL).
func newAPI(scope constructs.Construct, cfg Config, fns *Functions) *API {
	fn := fns.API.Function
	a := &API{Scope: constructs.NewConstruct(scope, jsii.String("Api"))}
	a.Logs = awslogs.NewLogGroup(a.Scope, jsii.String("AccessLogs"), &awslogs.LogGroupProps{
		Retention:     APILogRetention,
		RemovalPolicy: cfg.RemovalPolicy(),
	})
	if cfg.HTTPAPI {
		a.newHTTP(cfg, fn)
	} else {
		a.newREST(cfg, fn)
	}
	publicURL := a.URL
	if cfg.PublicURL != "" {
		publicURL = jsii.String(strings.ReplaceAll(cfg.PublicURL, PublicURLAPIID, *a.ID))
	}
	for _, l := range fns.All() {
		l.Function.AddEnvironment(jsii.String(EnvPublicURL), publicURL, nil)
	}
	return a
}

func (a *API) newHTTP(cfg Config, fn awslambda.Function) {
	a.Kind = "http"
	api := awsapigatewayv2.NewHttpApi(a.Scope, jsii.String("HttpApi"), &awsapigatewayv2.HttpApiProps{
		ApiName:            jsii.String(cfg.NamePrefix),
		Description:        jsii.String("Switchboard API (HTTP API v2, Lambda proxy)"),
		CreateDefaultStage: jsii.Bool(false),
	})
	stage := api.AddStage(jsii.String("DefaultStage"), &awsapigatewayv2.HttpStageOptions{
		StageName:  jsii.String("$default"),
		AutoDeploy: jsii.Bool(true),
		Throttle: &awsapigatewayv2.ThrottleSettings{
			RateLimit:  jsii.Number(APIRateLimit),
			BurstLimit: jsii.Number(APIBurstLimit),
		},
	})
	stage.Node().DefaultChild().(awsapigatewayv2.CfnStage).SetAccessLogSettings(&awsapigatewayv2.CfnStage_AccessLogSettingsProperty{
		DestinationArn: a.Logs.LogGroupArn(),
		Format:         jsii.String(accessLogFormat(httpAccessLogFields)),
	})
	// Payload format 2.0 (explicit): the trigger router decodes it.
	integration := awsapigatewayv2integrations.NewHttpLambdaIntegration(jsii.String("Lambdalith"), fn,
		&awsapigatewayv2integrations.HttpLambdaIntegrationProps{
			PayloadFormatVersion: awsapigatewayv2.PayloadFormatVersion_VERSION_2_0(),
		})
	for _, r := range APIRoutes {
		for _, path := range r.paths() {
			api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
				Path:        jsii.String(path),
				Methods:     &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod_ANY},
				Integration: integration,
			})
		}
	}
	a.HTTP = api
	a.ID = api.ApiId()
	a.URL = api.ApiEndpoint()
}

func (a *API) newREST(cfg Config, fn awslambda.Function) {
	a.Kind = "rest"
	api := awsapigateway.NewRestApi(a.Scope, jsii.String("RestApi"), &awsapigateway.RestApiProps{
		RestApiName:   jsii.String(cfg.NamePrefix),
		Description:   jsii.String("Switchboard API (REST API v1, Lambda proxy)"),
		EndpointTypes: &[]awsapigateway.EndpointType{awsapigateway.EndpointType_REGIONAL},
		// REST access and execution logs need the region's API Gateway
		// CloudWatch role (an account setting): the stack sets it.
		CloudWatchRole:              jsii.Bool(true),
		CloudWatchRoleRemovalPolicy: cfg.RemovalPolicy(),
		DeployOptions: &awsapigateway.StageOptions{
			StageName:            jsii.String(RestStageName),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(a.Logs),
			AccessLogFormat:      awsapigateway.AccessLogFormat_Custom(jsii.String(accessLogFormat(restAccessLogFields))),
			LoggingLevel:         awsapigateway.MethodLoggingLevel_ERROR,
			TracingEnabled:       jsii.Bool(true),
			ThrottlingRateLimit:  jsii.Number(APIRateLimit),
			ThrottlingBurstLimit: jsii.Number(APIBurstLimit),
		},
		DefaultIntegration: awsapigateway.NewLambdaIntegration(fn, &awsapigateway.LambdaIntegrationOptions{
			Proxy:           jsii.Bool(true),
			AllowTestInvoke: jsii.Bool(false),
		}),
	})
	// RestApi adds its own "Endpoint" output; the stack's ApiUrl is the stable name.
	api.Node().TryRemoveChild(jsii.String("Endpoint"))
	for _, r := range APIRoutes {
		res := api.Root().ResourceForPath(jsii.String(r.Path))
		if r.Exact {
			res.AddMethod(jsii.String("ANY"), nil, nil)
		}
		if r.Proxy {
			res.AddProxy(&awsapigateway.ProxyResourceOptions{AnyMethod: jsii.Bool(true)})
		}
	}
	a.REST = api
	a.ID = api.RestApiId()
	// Built from the id, not from the stage: the function's environment
	// may not depend on the deployment, which depends on the function.
	a.URL = jsii.String(fmt.Sprintf("https://%s.execute-api.%s.%s/%s",
		*api.RestApiId(), *awscdk.Aws_REGION(), *awscdk.Aws_URL_SUFFIX(), RestStageName))
}

// paths are the route paths of r.
func (r APIRoute) paths() []string {
	var out []string
	if r.Exact {
		out = append(out, r.Path)
	}
	if r.Proxy {
		out = append(out, r.Path+"/{proxy+}")
	}
	return out
}

// Access log fields (API Gateway $context variables) of each API kind.
var (
	httpAccessLogFields = map[string]string{
		"requestId":          "$context.requestId",
		"ip":                 "$context.identity.sourceIp",
		"requestTime":        "$context.requestTimeEpoch",
		"method":             "$context.httpMethod",
		"path":               "$context.path",
		"routeKey":           "$context.routeKey",
		"status":             "$context.status",
		"protocol":           "$context.protocol",
		"responseLength":     "$context.responseLength",
		"latencyMs":          "$context.responseLatency",
		"integrationLatency": "$context.integrationLatency",
		"integrationError":   "$context.integrationErrorMessage",
		"userAgent":          "$context.identity.userAgent",
	}
	restAccessLogFields = map[string]string{
		"requestId":          "$context.requestId",
		"ip":                 "$context.identity.sourceIp",
		"requestTime":        "$context.requestTimeEpoch",
		"method":             "$context.httpMethod",
		"path":               "$context.path",
		"resourcePath":       "$context.resourcePath",
		"status":             "$context.status",
		"protocol":           "$context.protocol",
		"responseLength":     "$context.responseLength",
		"latencyMs":          "$context.responseLatency",
		"integrationLatency": "$context.integrationLatency",
		"integrationError":   "$context.integrationErrorMessage",
		"userAgent":          "$context.identity.userAgent",
		"throttled":          "$context.error.responseType",
	}
)

// accessLogFormat is one JSON object per request (keys sorted).
func accessLogFormat(fields map[string]string) string {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return string(b)
}
