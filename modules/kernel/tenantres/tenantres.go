// Package tenantres tells where a tenant's dedicated (siloed) resources are:
// its own work queue (a bulkhead: one tenant's flood cannot starve the
// others) and its own KMS key for its data keys. Pooled tenants, and siloed
// tenants whose resources do not exist yet, share the platform's.
//
// # The contract with the infrastructure
//
// For each siloed tenant the infrastructure writes one SSM String parameter
// named <path><tenantId>, where <path> is SWITCHBOARD_TENANT_RESOURCES_PATH
// (for example "/switchboard/tenants/"), whose value is compact JSON:
//
//	{"tier":"siloed","workQueueUrl":"<sqs queue url>","kmsKeyArn":"<kms key arn>"}
//
// The function may call ssm:GetParameter on that path. No parameter means the
// tenant has no dedicated resources. No path configured (local mode, tests)
// means no tenant has any: the process wires no Resolver at all (nil), and
// every user of the port treats nil as "shared resources for everyone".
//
// # Adapters
//
//   - SSM (Lambda mode): GetParameter per tenant, cached per instance
//     (found 5 minutes, not found 30 seconds, bounded), see NewSSM.
//   - Static: an in-memory map, for tests.
//
// See docs/adr/0013-siloed-tenant-resources-at-runtime.md.
package tenantres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Tier is the tier a resources parameter names.
type Tier string

// Tiers of the contract. Only a siloed parameter routes anything.
const (
	TierPooled Tier = "pooled"
	TierSiloed Tier = "siloed"
)

// Resources are a tenant's dedicated resources as the infrastructure
// published them.
type Resources struct {
	// Found reports whether the tenant has a resources parameter. When it is
	// false every other field is empty and the tenant uses the shared
	// resources.
	Found bool
	// Tier is the parameter's tier: siloed (then WorkQueueURL and KMSKeyARN
	// are set) or pooled (a parameter that names no resources).
	Tier Tier
	// WorkQueueURL is the URL of the tenant's own SQS work queue.
	WorkQueueURL string
	// KMSKeyARN is the ARN of the tenant's own KMS key, which wraps its data
	// keys.
	KMSKeyARN string
}

// Siloed reports whether the tenant has dedicated resources to use: a
// parameter of tier siloed (which always names a queue and a key).
func (r Resources) Siloed() bool { return r.Found && r.Tier == TierSiloed }

// Resolver is the port to the tenants' dedicated resources.
//
// Resources answers the resources of tenantID:
//   - a siloed tenant whose resources exist: Found, Tier siloed, with
//     WorkQueueURL and KMSKeyARN set;
//   - a tenant without a parameter (every pooled tenant, a siloed tenant
//     whose resources are not deployed yet, or whose parameter was deleted),
//     the empty tenant id (platform work) and the store's reserved
//     namespaces ("_operator", "_platform"): the zero Resources (not Found)
//     and a nil error. Not found is an answer, never an error;
//   - an error when it cannot tell: the parameter store did not answer
//     (after the SDK's retries), refused access, the parameter's value
//     breaks the contract, or tenantID cannot name a parameter. Callers
//     decide what an unknown answer means for them (the work queue falls
//     back to the shared queue; new data keys are refused).
//
// Answers may be stale by the adapter's cache time (SSM: 5 minutes for a
// parameter found, 30 seconds for none). Implementations are safe for
// concurrent use and never panic on any tenantID.
type Resolver interface {
	Resources(ctx context.Context, tenantID string) (Resources, error)
}

// ErrMalformed is wrapped by the error of a parameter value that breaks the
// contract (not JSON, an unknown tier, a siloed tier without a queue URL or
// key ARN).
var ErrMalformed = errors.New("tenant resources: malformed parameter value")

// ErrInvalidTenantID is wrapped by the error of a tenant id that cannot be
// the last segment of a parameter name.
var ErrInvalidTenantID = errors.New("tenant resources: invalid tenant id")

// MaxValueBytes bounds a parameter value (SSM's standard tier holds 4 KB).
const MaxValueBytes = 4096

// wireValue is the parameter's JSON value.
type wireValue struct {
	Tier         string `json:"tier"`
	WorkQueueURL string `json:"workQueueUrl"`
	KMSKeyARN    string `json:"kmsKeyArn"`
}

// Parse reads a parameter value of the contract. Members it does not know
// are ignored (the infrastructure may add some); a pooled parameter's queue
// and key are ignored. Errors wrap ErrMalformed.
func Parse(value string) (Resources, error) {
	if len(value) > MaxValueBytes {
		return Resources{}, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(value), MaxValueBytes)
	}
	var v wireValue
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		return Resources{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch Tier(v.Tier) {
	case TierPooled:
		return Resources{Found: true, Tier: TierPooled}, nil
	case TierSiloed:
	default:
		return Resources{}, fmt.Errorf("%w: tier %q, want siloed or pooled", ErrMalformed, v.Tier)
	}
	u, err := url.Parse(v.WorkQueueURL)
	if v.WorkQueueURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Resources{}, fmt.Errorf("%w: workQueueUrl %q is not an http(s) URL", ErrMalformed, v.WorkQueueURL)
	}
	if !strings.HasPrefix(v.KMSKeyARN, "arn:") || strings.ContainsAny(v.KMSKeyARN, " \t\r\n") {
		return Resources{}, fmt.Errorf("%w: kmsKeyArn %q is not an ARN", ErrMalformed, v.KMSKeyARN)
	}
	return Resources{Found: true, Tier: TierSiloed, WorkQueueURL: v.WorkQueueURL, KMSKeyARN: v.KMSKeyARN}, nil
}

// Format is the parameter value of r, as the contract spells it (for tests
// and tools).
func Format(r Resources) string {
	b, _ := json.Marshal(wireValue{Tier: string(r.Tier), WorkQueueURL: r.WorkQueueURL, KMSKeyARN: r.KMSKeyARN})
	return string(b)
}

var (
	pathPattern     = regexp.MustCompile(`^/([A-Za-z0-9_.-]+/)*$`)
	tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
)

// MaxPathBytes bounds the path so that <path><tenantId> stays within SSM's
// name limit (1011 characters) for every valid tenant id.
const MaxPathBytes = 800

// ValidatePath checks SWITCHBOARD_TENANT_RESOURCES_PATH: it starts and ends
// with '/', its segments are SSM name characters (letters, digits, '_', '.',
// '-'), none empty, and it does not start with a name SSM reserves ("aws",
// "ssm").
func ValidatePath(path string) error {
	if !strings.HasPrefix(path, "/") || !strings.HasSuffix(path, "/") {
		return fmt.Errorf("tenant resources path %q must start and end with '/'", path)
	}
	if len(path) > MaxPathBytes {
		return fmt.Errorf("tenant resources path of %d characters, more than %d", len(path), MaxPathBytes)
	}
	if !pathPattern.MatchString(path) {
		return fmt.Errorf("tenant resources path %q: use letters, digits, '_', '.', '-' between single '/'", path)
	}
	first := strings.ToLower(strings.SplitN(strings.TrimPrefix(path, "/"), "/", 2)[0])
	if strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return fmt.Errorf("tenant resources path %q: SSM reserves names starting with aws or ssm", path)
	}
	return nil
}

// checkTenantID reports whether tenantID can be the last segment of a
// parameter name (ids.Tenant ids always can).
func checkTenantID(tenantID string) error {
	if !tenantIDPattern.MatchString(tenantID) {
		return fmt.Errorf("%w: %.80q", ErrInvalidTenantID, tenantID)
	}
	return nil
}
