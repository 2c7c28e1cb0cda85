package main

// tenants.go: per-tenant resources from the declarative tenants manifest
// (infra/tenants.json, or the path in context tenantsManifest):
//
//	{"tenants":[{"id":"tnt_...","name":"Acme","tier":"siloed"}, ...]}
//
// Pooled tenants share the deployment's queue and key: their entries only
// document them. A siloed tenant gets its own stack (a nested stack, so
// that hundreds of tenants stay below CloudFormation's 500 resources per
// stack) with a bulkhead: its own work queue and DLQ (encrypted with its
// key), its own KMS key for its data keys, its own event source mapping on
// the worker with its own maximum concurrency, its own alarms, and the SSM
// parameter that tells the function about them.
//
// The runtime contract with the function (do not change one side alone):
// for each siloed tenant the String parameter /<prefix>/tenants/<tenant id>
// holds compact JSON {"tier":"siloed","workQueueUrl":"<url>","kmsKeyArn":"<arn>"}
// (TenantResources); the functions get SWITCHBOARD_TENANT_RESOURCES_PATH
// (/<prefix>/tenants/), ssm:GetParameter under it, sqs:SendMessage on every
// tenant queue and kms:Encrypt, kms:Decrypt and kms:GenerateDataKey on every
// tenant key. The parameter's existence is what moves a siloed tenant from
// provisioning to active. The mapping never goes into the environment
// (4 KB for all variables).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// Siloed tenants' event source mappings.
const (
	// DefaultTenantMaxConcurrency is a siloed tenant's maximum concurrency
	// when its manifest entry names none: enough for one tenant's steady
	// load while hundreds of tenants' caps stay within the account's
	// concurrency quota.
	DefaultTenantMaxConcurrency = 5
	// MinMaxConcurrency and MaxMaxConcurrency are Lambda's bounds of an SQS
	// event source mapping's maximum concurrency.
	MinMaxConcurrency = 2
	MaxMaxConcurrency = 1000
	// MaxTenantNameLength bounds a manifest name (as onboard-tenant does).
	MaxTenantNameLength = 200
)

// TenantsManifest is the tenants manifest.
type TenantsManifest struct {
	Tenants []Tenant `json:"tenants"`
}

// Tenant is one manifest entry.
type Tenant struct {
	// ID is the tenant id from onboard-tenant: tnt_ and 26 Crockford
	// base32 characters.
	ID string `json:"id"`
	// Name is for people: the nested stack's description.
	Name string `json:"name"`
	// Tier is "pooled" or "siloed".
	Tier domain.Tier `json:"tier"`
	// MaxConcurrency is a siloed tenant's event source mapping's maximum
	// concurrency (2 to 1000; 0 means DefaultTenantMaxConcurrency).
	MaxConcurrency int `json:"maxConcurrency,omitempty"`
}

// TenantResources is the value of a siloed tenant's SSM parameter.
type TenantResources struct {
	Tier         domain.Tier `json:"tier"`
	WorkQueueURL string      `json:"workQueueUrl"`
	KMSKeyARN    string      `json:"kmsKeyArn"`
}

// Siloed returns the siloed tenants, in manifest order.
func (m TenantsManifest) Siloed() []Tenant {
	var out []Tenant
	for _, t := range m.Tenants {
		if t.Tier == domain.TierSiloed {
			out = append(out, t)
		}
	}
	return out
}

// LoadTenantsManifest reads and validates the manifest at path.
func LoadTenantsManifest(path string) (TenantsManifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return TenantsManifest{}, fmt.Errorf("tenants manifest: %w (context %s)", err, CtxTenantsManifest)
	}
	m, err := ParseTenantsManifest(b)
	if err != nil {
		return TenantsManifest{}, fmt.Errorf("tenants manifest %s: %w", path, err)
	}
	return m, nil
}

// ParseTenantsManifest decodes a manifest strictly (unknown fields are
// errors) and validates it: well-formed unique tenant ids, a name, a known
// tier, and a maximum concurrency only for siloed tenants, within Lambda's
// bounds. Every problem is reported.
func ParseTenantsManifest(b []byte) (TenantsManifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m TenantsManifest
	if err := dec.Decode(&m); err != nil {
		return TenantsManifest{}, fmt.Errorf("decode: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return TenantsManifest{}, errors.New("decode: data after the manifest object")
	}
	if m.Tenants == nil {
		return TenantsManifest{}, errors.New(`no "tenants" list (an empty manifest is {"tenants":[]})`)
	}
	var errs []error
	seen := map[string]int{}
	for i, t := range m.Tenants {
		at := fmt.Sprintf("tenants[%d]", i)
		if !ids.Valid(ids.Tenant, t.ID) {
			errs = append(errs, fmt.Errorf("%s: id %q: want %s_ and 26 Crockford base32 characters (upper case), as onboard-tenant returned it", at, t.ID, ids.Tenant))
		} else if j, dup := seen[t.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: id %s repeats tenants[%d]", at, t.ID, j))
		} else {
			seen[t.ID] = i
		}
		if strings.TrimSpace(t.Name) == "" || len([]rune(t.Name)) > MaxTenantNameLength || strings.ContainsFunc(t.Name, unicode.IsControl) {
			errs = append(errs, fmt.Errorf("%s (%s): name: want 1 to %d characters, no control characters", at, t.ID, MaxTenantNameLength))
		}
		switch t.Tier {
		case domain.TierPooled:
			if t.MaxConcurrency != 0 {
				errs = append(errs, fmt.Errorf("%s (%s): maxConcurrency: only siloed tenants have their own", at, t.ID))
			}
		case domain.TierSiloed:
			if c := t.MaxConcurrency; c != 0 && (c < MinMaxConcurrency || c > MaxMaxConcurrency) {
				errs = append(errs, fmt.Errorf("%s (%s): maxConcurrency %d: want %d to %d", at, t.ID, c, MinMaxConcurrency, MaxMaxConcurrency))
			}
		default:
			errs = append(errs, fmt.Errorf("%s (%s): tier %q: want %q or %q", at, t.ID, t.Tier, domain.TierPooled, domain.TierSiloed))
		}
	}
	if len(errs) > 0 {
		return TenantsManifest{}, errors.Join(errs...)
	}
	return m, nil
}

// tenantDeps is what a siloed tenant's stack uses from the main stack.
type tenantDeps struct {
	cfg    Config
	worker awslambda.IFunction
	roles  []awsiam.IRole // both functions' roles: users of the tenant key
	topic  awssns.ITopic
}

// TenantStack is a siloed tenant's nested stack and its resources.
type TenantStack struct {
	Stack     awscdk.NestedStack
	Key       awskms.Key
	Queues    *WorkQueues
	Mapping   awslambda.EventSourceMapping
	Parameter awsssm.StringParameter
}

// newTenants makes one nested stack per siloed tenant under a "Tenants"
// construct (the stack's id is the tenant id).
func newTenants(scope constructs.Construct, m TenantsManifest, d tenantDeps) []*TenantStack {
	siloed := m.Siloed()
	if len(siloed) == 0 {
		return nil
	}
	c := constructs.NewConstruct(scope, jsii.String("Tenants"))
	out := make([]*TenantStack, 0, len(siloed))
	for _, t := range siloed {
		out = append(out, newSiloedTenant(c, t, d))
	}
	return out
}

// newSiloedTenant is one siloed tenant's stack.
func newSiloedTenant(scope constructs.Construct, t Tenant, d tenantDeps) *TenantStack {
	cfg := d.cfg
	ns := awscdk.NewNestedStack(scope, jsii.String(t.ID), &awscdk.NestedStackProps{
		Description: jsii.String(fmt.Sprintf("Switchboard siloed tenant %s (%s): work queue, DLQ, data key, event source mapping, alarms", t.ID, t.Name)),
	})
	awscdk.Tags_Of(ns).Add(jsii.String("switchboard:tenant"), jsii.String(t.ID), nil)

	key := newKey(ns, "DataKeys", cfg, KeyAlias(cfg.NamePrefix, "tenants/"+t.ID),
		fmt.Sprintf("Switchboard tenant %s: wraps its data keys and encrypts its work queues", t.ID))
	// The functions use the key directly (envelope encryption of the
	// tenant's secrets) and through SQS (the queues are encrypted with it).
	principals := make([]awsiam.IPrincipal, 0, len(d.roles))
	for _, r := range d.roles {
		principals = append(principals, awsiam.NewArnPrincipal(r.RoleArn()))
	}
	// Directly, only for this tenant's data keys (the encryption context
	// the envelope sends names the tenant: secrets.KMSContextTenant), so a
	// bug that asked with another tenant's context is refused by KMS too;
	// through SQS, for the tenant's encrypted queues.
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("SwitchboardFunctionsDataKeys"),
		Principals: &principals,
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"kms:EncryptionContext:" + secrets.KMSContextTenant: t.ID}},
	}), nil)
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("SwitchboardFunctionsViaSQS"),
		Principals: &principals,
		Actions:    jsii.Strings("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"kms:ViaService": "sqs." + *awscdk.Stack_Of(ns).Region() + ".amazonaws.com"}},
	}), nil)

	q := newWorkQueues(ns, TenantQueueName(cfg.NamePrefix, t.ID), TenantDLQName(cfg.NamePrefix, t.ID), key)
	maxConcurrency := t.MaxConcurrency
	if maxConcurrency == 0 {
		maxConcurrency = DefaultTenantMaxConcurrency
	}
	// The worker's role may consume every tenant queue (function.go).
	mapping := awslambda.NewEventSourceMapping(ns, jsii.String("WorkEvents"), &awslambda.EventSourceMappingProps{
		Target:                  d.worker,
		EventSourceArn:          q.Queue.QueueArn(),
		BatchSize:               jsii.Number(WorkBatchSize),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(maxConcurrency),
	})
	newQueueAlarms(ns, "", "tenant "+t.ID+"'s work queue", q, d.topic)

	value, err := json.Marshal(TenantResources{
		Tier:         domain.TierSiloed,
		WorkQueueURL: *q.Queue.QueueUrl(),
		KMSKeyARN:    *key.KeyArn(),
	})
	if err != nil {
		panic(err) // strings only
	}
	param := awsssm.NewStringParameter(ns, jsii.String("Resources"), &awsssm.StringParameterProps{
		ParameterName: jsii.String(TenantParameterName(cfg.NamePrefix, t.ID)),
		Description:   jsii.String("Switchboard siloed tenant " + t.ID + ": its work queue and KMS key (read by the functions)"),
		StringValue:   jsii.String(string(value)),
		Tier:          awsssm.ParameterTier_STANDARD,
	})
	// Last: the tenant becomes active once its resources exist.
	param.Node().AddDependency(mapping, q.Queue, key)
	return &TenantStack{Stack: ns, Key: key, Queues: q, Mapping: mapping, Parameter: param}
}
