package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// SchemaVersion is the schema version of every tenancy event written today.
const SchemaVersion = 1

// Stream ids. Persisted.
const (
	TenantStream               = "tenant"
	scopeStreamPrefix          = "scope-"
	serviceAccountStreamPrefix = "service-account-"
	roleStreamPrefix           = "role-"
)

// RoleStream is the stream of a tenant role.
func RoleStream(roleID string) string { return roleStreamPrefix + roleID }

// ScopeStream is the stream of a scope.
func ScopeStream(scopeID string) string { return scopeStreamPrefix + scopeID }

// ServiceAccountStream is the stream of a service account.
func ServiceAccountStream(serviceAccountID string) string {
	return serviceAccountStreamPrefix + serviceAccountID
}

// streamOf names the stream an event belongs to.
func streamOf(ev domain.Event) (string, error) {
	switch e := ev.(type) {
	case domain.TenantOnboarded, domain.TenantProvisioned:
		return TenantStream, nil
	case domain.ScopeCreated:
		return ScopeStream(e.ScopeID), nil
	case domain.ServiceAccountCreated:
		return ServiceAccountStream(e.ServiceAccountID), nil
	case domain.APIKeyIssued:
		return ServiceAccountStream(e.ServiceAccountID), nil
	case domain.APIKeyRevoked:
		return ServiceAccountStream(e.ServiceAccountID), nil
	case domain.RoleGranted:
		return ServiceAccountStream(e.ServiceAccountID), nil
	case domain.RoleRevoked:
		return ServiceAccountStream(e.ServiceAccountID), nil
	case domain.RoleCreated:
		return RoleStream(e.RoleID), nil
	}
	return "", fmt.Errorf("stream of %T: unknown event", ev)
}

// codec encodes and decodes the module's events (every type, by a sample).
var codec = eventstore.NewCodec[domain.Event](SchemaVersion,
	domain.TenantOnboarded{},
	domain.TenantProvisioned{},
	domain.ScopeCreated{},
	domain.ServiceAccountCreated{},
	domain.APIKeyIssued{},
	domain.APIKeyRevoked{},
	domain.RoleGranted{},
	domain.RoleRevoked{},
	domain.RoleCreated{},
)

// encode wraps a domain event in the store's envelope.
func encode(ctx context.Context, gen ids.Generator, ev domain.Event, now time.Time) (eventstore.Event, error) {
	return codec.Encode(ctx, gen, ev, now)
}

// decode turns a stored event back into a recorded domain event.
func decode(e eventstore.Event) (domain.Recorded, error) {
	ev, err := codec.Decode(e)
	if err != nil {
		return domain.Recorded{}, err
	}
	return domain.Recorded{Event: ev, Version: e.Version, OccurredAt: e.OccurredAt}, nil
}
