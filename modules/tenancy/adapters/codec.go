package adapters

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
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

// encode wraps a domain event in the store's envelope.
func encode(ctx context.Context, gen ids.Generator, ev domain.Event, now time.Time) (eventstore.Event, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("encode %s: %w", ev.EventType(), err)
	}
	return eventstore.Event{
		ID:            gen.New(ids.Event),
		Type:          ev.EventType(),
		SchemaVersion: SchemaVersion,
		OccurredAt:    now,
		Invocation:    invocation.From(ctx).Meta(),
		Data:          data,
	}, nil
}

// decode turns a stored event back into a domain event. Unknown types and
// schema versions are errors: a reader older than the writer must not guess.
func decode(e eventstore.Event) (domain.Recorded, error) {
	if e.SchemaVersion != SchemaVersion {
		return domain.Recorded{}, fmt.Errorf("decode %s %s: unknown schema version %d", e.StreamID, e.Type, e.SchemaVersion)
	}
	var ev domain.Event
	var err error
	switch e.Type {
	case domain.TypeTenantOnboarded:
		ev, err = unmarshal[domain.TenantOnboarded](e.Data)
	case domain.TypeTenantProvisioned:
		ev, err = unmarshal[domain.TenantProvisioned](e.Data)
	case domain.TypeScopeCreated:
		ev, err = unmarshal[domain.ScopeCreated](e.Data)
	case domain.TypeServiceAccountCreated:
		ev, err = unmarshal[domain.ServiceAccountCreated](e.Data)
	case domain.TypeAPIKeyIssued:
		ev, err = unmarshal[domain.APIKeyIssued](e.Data)
	case domain.TypeAPIKeyRevoked:
		ev, err = unmarshal[domain.APIKeyRevoked](e.Data)
	case domain.TypeRoleGranted:
		ev, err = unmarshal[domain.RoleGranted](e.Data)
	case domain.TypeRoleRevoked:
		ev, err = unmarshal[domain.RoleRevoked](e.Data)
	case domain.TypeRoleCreated:
		ev, err = unmarshal[domain.RoleCreated](e.Data)
	default:
		return domain.Recorded{}, fmt.Errorf("decode %s v%d: unknown type %q", e.StreamID, e.Version, e.Type)
	}
	if err != nil {
		return domain.Recorded{}, fmt.Errorf("decode %s v%d %s: %w", e.StreamID, e.Version, e.Type, err)
	}
	return domain.Recorded{Event: ev, Version: e.Version, OccurredAt: e.OccurredAt}, nil
}

func unmarshal[T domain.Event](data []byte) (domain.Event, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}
