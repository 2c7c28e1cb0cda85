package domain

import (
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// Bounds of a service account. They keep the commit that changes an
// account's bindings within one store transaction: it rewrites the lookup row
// of every active key (at most MaxActiveAPIKeys) besides the event, the
// account's row and the idempotency record, far below DynamoDB's 100 items;
// and they keep a key's lookup row (and, later, an access token carrying the
// bindings) small.
const (
	// MaxActiveAPIKeys is how many keys that are not revoked an account may
	// have at once (room for rotation: issue the new key, deploy, revoke the old).
	MaxActiveAPIKeys = 10
	// MaxRoleBindings is how many role bindings an account may hold.
	MaxRoleBindings = 50
)

// ServiceAccount is a non-human principal of a tenant: its role bindings and
// the API keys that authenticate it. ScopeID is the account's own scope, where
// it was created: it is visible to, and managed by, admins of that scope and
// the scopes above it, whatever its bindings are.
type ServiceAccount struct {
	ID       string
	ScopeID  string
	Name     string
	Bindings []RoleBinding // distinct, in grant order
	Keys     []APIKey      // in issue order, revoked ones too
	// CreatedAt and UpdatedAt are the times of the first and the last event.
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
}

// RoleBinding grants a role at a scope: valid in that scope and every scope below it.
type RoleBinding struct {
	Role    Role
	ScopeID string
}

// APIKey is an issued key as the domain knows it: the hash of its secret only.
type APIKey struct {
	ID         string
	Name       string // "" when it was issued without one
	SecretHash string
	IssuedAt   time.Time
	RevokedAt  time.Time // zero while the key is active
}

// Revoked reports whether the key was revoked.
func (k APIKey) Revoked() bool { return !k.RevokedAt.IsZero() }

// CreateServiceAccount checks a new service account at a scope with its
// first binding, role at that scope.
func CreateServiceAccount(serviceAccountID, scopeID, name, role string) (ServiceAccountCreated, error) {
	if err := requireID("serviceAccountId", serviceAccountID); err != nil {
		return ServiceAccountCreated{}, err
	}
	if err := requireID("scopeId", scopeID); err != nil {
		return ServiceAccountCreated{}, err
	}
	n, err := NormalizeName("name", name)
	if err != nil {
		return ServiceAccountCreated{}, err
	}
	r, err := ParseRole(role)
	if err != nil {
		return ServiceAccountCreated{}, err
	}
	return ServiceAccountCreated{ServiceAccountID: serviceAccountID, ScopeID: scopeID, Name: n, Role: r}, nil
}

// Holds reports whether s holds exactly this binding.
func (s *ServiceAccount) Holds(b RoleBinding) bool { return slices.Contains(s.Bindings, b) }

// GrantRole returns the events that grant role at scopeID. Granting a binding
// s already holds changes nothing: no events, no error (a retry is harmless).
// The caller checks that the scope exists and that the caller may grant there.
// Errors: 400 errors.tenancy.invalid_role; 409 ErrTooManyRoleBindings.
func (s *ServiceAccount) GrantRole(role, scopeID string) ([]Event, error) {
	r, err := ParseRole(role)
	if err != nil {
		return nil, err
	}
	if err := requireID("scopeId", scopeID); err != nil {
		return nil, err
	}
	if s.Holds(RoleBinding{Role: r, ScopeID: scopeID}) {
		return nil, nil
	}
	if len(s.Bindings) >= MaxRoleBindings {
		return nil, ErrTooManyRoleBindings
	}
	return []Event{RoleGranted{ServiceAccountID: s.ID, Role: r, ScopeID: scopeID}}, nil
}

// RevokeRole returns the events that remove the binding of role at scopeID
// (exactly that one: a binding at a scope above or below is another binding).
// Revoking a binding s does not hold changes nothing: no events, no error. An
// account may be left without bindings: it then may do nothing until granted
// one. Errors: 400 errors.tenancy.invalid_role.
func (s *ServiceAccount) RevokeRole(role, scopeID string) ([]Event, error) {
	r, err := ParseRole(role)
	if err != nil {
		return nil, err
	}
	if !s.Holds(RoleBinding{Role: r, ScopeID: scopeID}) {
		return nil, nil
	}
	return []Event{RoleRevoked{ServiceAccountID: s.ID, Role: r, ScopeID: scopeID}}, nil
}

// ActiveKeys returns the keys of s that are not revoked, in issue order.
func (s *ServiceAccount) ActiveKeys() []APIKey {
	var out []APIKey
	for _, k := range s.Keys {
		if !k.Revoked() {
			out = append(out, k)
		}
	}
	return out
}

// Key returns the key of s with id keyID.
func (s *ServiceAccount) Key(keyID string) (APIKey, bool) {
	for _, k := range s.Keys {
		if k.ID == keyID {
			return k, true
		}
	}
	return APIKey{}, false
}

// IssueAPIKey returns the event that issues a key to s. secretHash is the hex
// SHA-256 of the secret (the secret itself never reaches the domain); name is
// optional ("" for none), else trimmed and 1..200 characters. Errors: 400
// errors.tenancy.invalid_name; 409 ErrTooManyAPIKeys.
func (s *ServiceAccount) IssueAPIKey(keyID, secretHash, name string) (APIKeyIssued, error) {
	if err := requireID("apiKeyId", keyID); err != nil {
		return APIKeyIssued{}, err
	}
	if err := requireID("secretHash", secretHash); err != nil {
		return APIKeyIssued{}, err
	}
	if name != "" {
		n, err := NormalizeName("name", name)
		if err != nil {
			return APIKeyIssued{}, err
		}
		name = n
	}
	if _, ok := s.Key(keyID); ok {
		return APIKeyIssued{}, errCorrupt(fmt.Sprintf("api key %s issued twice", keyID))
	}
	if len(s.ActiveKeys()) >= MaxActiveAPIKeys {
		return APIKeyIssued{}, ErrTooManyAPIKeys
	}
	return APIKeyIssued{APIKeyID: keyID, ServiceAccountID: s.ID, SecretHash: secretHash, Name: name}, nil
}

// RevokeAPIKey returns the events that revoke a key of s. Revoking a key that
// is revoked already changes nothing: no events, no error. Errors: 404
// errs.NotFound("api_key") when s has no such key.
func (s *ServiceAccount) RevokeAPIKey(keyID string) ([]Event, error) {
	k, ok := s.Key(keyID)
	if !ok {
		return nil, errs.NotFound("api_key")
	}
	if k.Revoked() {
		return nil, nil
	}
	return []Event{APIKeyRevoked{APIKeyID: keyID, ServiceAccountID: s.ID}}, nil
}

// ReplayServiceAccount rebuilds a service account; (nil, nil) when its stream is empty.
func ReplayServiceAccount(history []Recorded) (*ServiceAccount, error) {
	if len(history) == 0 {
		return nil, nil
	}
	s := &ServiceAccount{}
	for _, r := range history {
		if err := s.Apply(r); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Apply moves the service account forward by one recorded event. A stream
// written before accounts had several bindings replays as it was: its
// service-account-created event is the first binding.
func (s *ServiceAccount) Apply(r Recorded) error {
	if _, created := r.Event.(ServiceAccountCreated); !created && s.Version == 0 {
		return errCorrupt(fmt.Sprintf("event %s before the service account was created", r.Event.EventType()))
	}
	switch e := r.Event.(type) {
	case ServiceAccountCreated:
		if s.Version != 0 {
			return errCorrupt(fmt.Sprintf("service account %s created at version %d", e.ServiceAccountID, r.Version))
		}
		s.ID, s.ScopeID, s.Name = e.ServiceAccountID, e.ScopeID, e.Name
		s.Bindings = []RoleBinding{{Role: e.Role, ScopeID: e.ScopeID}}
		s.CreatedAt = r.OccurredAt
	case APIKeyIssued:
		if e.ServiceAccountID != s.ID {
			return errCorrupt(fmt.Sprintf("api key %s issued to %s in the stream of %q", e.APIKeyID, e.ServiceAccountID, s.ID))
		}
		s.Keys = append(s.Keys, APIKey{ID: e.APIKeyID, Name: e.Name, SecretHash: e.SecretHash, IssuedAt: r.OccurredAt})
	case APIKeyRevoked:
		i := slices.IndexFunc(s.Keys, func(k APIKey) bool { return k.ID == e.APIKeyID })
		if e.ServiceAccountID != s.ID || i < 0 {
			return errCorrupt(fmt.Sprintf("api key %s of %s revoked in the stream of %q", e.APIKeyID, e.ServiceAccountID, s.ID))
		}
		if !s.Keys[i].Revoked() {
			s.Keys[i].RevokedAt = r.OccurredAt
		}
	case RoleGranted:
		if e.ServiceAccountID != s.ID {
			return errCorrupt(fmt.Sprintf("role granted to %s in the stream of %q", e.ServiceAccountID, s.ID))
		}
		if b := (RoleBinding{Role: e.Role, ScopeID: e.ScopeID}); !s.Holds(b) {
			s.Bindings = append(s.Bindings, b)
		}
	case RoleRevoked:
		if e.ServiceAccountID != s.ID {
			return errCorrupt(fmt.Sprintf("role revoked from %s in the stream of %q", e.ServiceAccountID, s.ID))
		}
		b := RoleBinding{Role: e.Role, ScopeID: e.ScopeID}
		s.Bindings = slices.DeleteFunc(s.Bindings, func(x RoleBinding) bool { return x == b })
	default:
		return errCorrupt(fmt.Sprintf("event %T in a service account stream", r.Event))
	}
	s.Version = r.Version
	s.UpdatedAt = r.OccurredAt
	return nil
}
