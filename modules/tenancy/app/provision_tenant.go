package app

import (
	"context"
	"fmt"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// WorkProvisionTenant is the work type queued by onboard-tenant. Persisted.
const WorkProvisionTenant = "tenancy.provision-tenant"

// ProvisionTenantPayload is the payload of WorkProvisionTenant.
type ProvisionTenantPayload struct {
	TenantID string `json:"tenantId"`
}

// Timing of the checks for a siloed tenant's resources.
const (
	// MinRecheckDelay is the shortest wait before a siloed tenant's resources
	// are checked again (the SSM resolver believes "not found" for 30 s).
	MinRecheckDelay = 30 * time.Second
	// MaxRecheckDelay is the longest wait between two checks.
	MaxRecheckDelay = time.Hour
	// ProvisionTimeout is how long after onboarding a siloed tenant's
	// resources are waited for. Later, a check that does not find them
	// fails: the work path retries it with its backoff and parks it after
	// its attempts, visible to operators (list-parked-work) and replayable
	// (replay-parked-work) once the resources exist.
	ProvisionTimeout = 7 * 24 * time.Hour
)

// RecheckDelay is how long a siloed tenant onboarded age ago waits for the
// next check of its resources: a quarter of its age, at least
// MinRecheckDelay and at most MaxRecheckDelay. So checks are frequent while
// a deploy is likely under way (every 30 s for the first two minutes) and
// hourly after four hours: about 190 checks in ProvisionTimeout.
func RecheckDelay(age time.Duration) time.Duration {
	return min(max(age/4, MinRecheckDelay), MaxRecheckDelay)
}

// ProvisionTenantHandler readies a tenant's resources and marks it active
// (tenancy.tenant-provisioned).
//
//   - A pooled tenant shares the platform's resources: it is active at once.
//   - A siloed tenant gets its own work queue and KMS key from the
//     infrastructure (a deploy writes its resources parameter, see package
//     tenantres). It stays provisioning until the resolver finds them, then
//     becomes active. While they are missing, the handler succeeds after
//     committing a new WorkProvisionTenant item due after RecheckDelay (so
//     the wait never uses up the item's attempts); from ProvisionTimeout after
//     onboarding on, a check that finds nothing fails, and the work path
//     parks the item after its attempts. A resolver error fails the check
//     (the work path retries it with backoff).
//   - Without a resolver (local mode, or no SWITCHBOARD_TENANT_RESOURCES_PATH)
//     no tenant has dedicated resources: a siloed tenant is active at once
//     and shares the platform's, like a pooled one.
//
// It is idempotent (work is delivered at least once): an active tenant is left
// as it is. The event is appended at the version the tenant was read at; when
// another writer moved the stream first, the unit of work runs it again.
type ProvisionTenantHandler struct {
	repo      Repository
	log       *slog.Logger
	resources tenantres.Resolver
	clock     clock.Clock
}

// WithResources returns h checking siloed tenants' resources through r (nil:
// none, a siloed tenant is active at once) and telling time with clk (nil:
// the system clock).
func (h ProvisionTenantHandler) WithResources(r tenantres.Resolver, clk clock.Clock) ProvisionTenantHandler {
	if clk == nil {
		clk = clock.System{}
	}
	h.resources, h.clock = r, clk
	return h
}

// Handle provisions the invocation's tenant (invocation.From(ctx).TenantID(),
// set from the work item). A returned error asks the work path for a retry.
func (h ProvisionTenantHandler) Handle(ctx context.Context) error {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return fmt.Errorf("provision tenant: %w", err)
	}
	t, err := h.repo.Tenant(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("provision tenant %s: %w", tenantID, err)
	}
	events := t.Provision()
	if len(events) == 0 {
		h.log.DebugContext(ctx, "tenant already active", slog.String("tenantId", tenantID))
		return nil
	}
	var res tenantres.Resources
	if t.Tier == domain.TierSiloed && h.resources != nil {
		res, err = h.resources.Resources(ctx, tenantID)
		if err != nil {
			return fmt.Errorf("provision tenant %s: resources: %w", tenantID, err)
		}
		if !res.Siloed() {
			return h.recheckLater(ctx, t, res)
		}
	}
	if err := h.repo.Save(ctx, Changes{TenantID: tenantID, Aggregates: []Change{{Base: t.Version, Events: events}}}); err != nil {
		return fmt.Errorf("provision tenant %s: %w", tenantID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		attrs := []any{slog.String("tenantId", tenantID), slog.String("tier", string(t.Tier))}
		if res.Siloed() {
			attrs = append(attrs, slog.String("workQueueUrl", res.WorkQueueURL), slog.String("kmsKeyArn", res.KMSKeyARN))
		}
		h.log.InfoContext(ctx, "tenant provisioned", attrs...)
	})
	return nil
}

// recheckLater queues the next check of a siloed tenant whose resources were
// not found, or fails once ProvisionTimeout has passed since onboarding.
func (h ProvisionTenantHandler) recheckLater(ctx context.Context, t *domain.Tenant, res tenantres.Resources) error {
	now := h.clock.Now()
	age := now.Sub(t.CreatedAt)
	if res.Found {
		// A parameter that names no resources (tier pooled) for a siloed
		// tenant: the infrastructure's mistake; keep waiting for the right one.
		h.log.WarnContext(ctx, "siloed tenant's resources parameter names no resources", slog.String("tenantId", t.ID),
			slog.String("parameterTier", string(res.Tier)))
	}
	if age >= ProvisionTimeout {
		return fmt.Errorf("provision tenant %s: siloed tenant's resources not found %s after onboarding; "+
			"deploy them, then replay this work item (replay-parked-work)", t.ID, age.Round(time.Minute))
	}
	due := now.Add(RecheckDelay(age))
	err := h.repo.Save(ctx, Changes{TenantID: t.ID, Work: []Work{{
		Type: WorkProvisionTenant, Payload: ProvisionTenantPayload{TenantID: t.ID}, DueAt: due,
	}}})
	if err != nil {
		return fmt.Errorf("provision tenant %s: queue the next check: %w", t.ID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log.InfoContext(ctx, "siloed tenant waits for its resources; checking again later",
			slog.String("tenantId", t.ID), slog.Time("nextCheckAt", due), slog.Duration("waited", age))
	})
	return nil
}
