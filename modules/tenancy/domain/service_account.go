package domain

import (
	"fmt"
	"time"
)

// ServiceAccount is a non-human principal of a tenant: one role at one scope,
// and the API keys that authenticate it.
type ServiceAccount struct {
	ID        string
	ScopeID   string
	Name      string
	Role      Role
	Keys      []APIKey // in issue order
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
}

// APIKey is an issued key as the domain knows it: the hash of its secret only.
type APIKey struct {
	ID         string
	SecretHash string
	IssuedAt   time.Time
}

// CreateServiceAccount checks a new service account with a role at a scope.
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

// IssueAPIKey returns the event that issues a key to s. secretHash is the hex
// SHA-256 of the secret (the secret itself never reaches the domain).
func (s *ServiceAccount) IssueAPIKey(keyID, secretHash string) (APIKeyIssued, error) {
	if err := requireID("apiKeyId", keyID); err != nil {
		return APIKeyIssued{}, err
	}
	if err := requireID("secretHash", secretHash); err != nil {
		return APIKeyIssued{}, err
	}
	for _, k := range s.Keys {
		if k.ID == keyID {
			return APIKeyIssued{}, errCorrupt(fmt.Sprintf("api key %s issued twice", keyID))
		}
	}
	return APIKeyIssued{APIKeyID: keyID, ServiceAccountID: s.ID, SecretHash: secretHash}, nil
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

// Apply moves the service account forward by one recorded event.
func (s *ServiceAccount) Apply(r Recorded) error {
	switch e := r.Event.(type) {
	case ServiceAccountCreated:
		if s.Version != 0 {
			return errCorrupt(fmt.Sprintf("service account %s created at version %d", e.ServiceAccountID, r.Version))
		}
		s.ID, s.ScopeID, s.Name, s.Role = e.ServiceAccountID, e.ScopeID, e.Name, e.Role
		s.CreatedAt = r.OccurredAt
	case APIKeyIssued:
		if s.Version == 0 || e.ServiceAccountID != s.ID {
			return errCorrupt(fmt.Sprintf("api key %s issued to %s in the stream of %q", e.APIKeyID, e.ServiceAccountID, s.ID))
		}
		s.Keys = append(s.Keys, APIKey{ID: e.APIKeyID, SecretHash: e.SecretHash, IssuedAt: r.OccurredAt})
	default:
		return errCorrupt(fmt.Sprintf("event %T in a service account stream", r.Event))
	}
	s.Version = r.Version
	s.UpdatedAt = r.OccurredAt
	return nil
}
