package domain

import (
	"fmt"
	"time"
)

// Scope is a node of a tenant's scope tree. Roles granted at a scope hold in
// it and in every scope below it. Scopes nest without depth limit and never move.
type Scope struct {
	ID       string
	ParentID string // "" for the root scope
	Name     string
	// Path is the ids from the root down to and including this scope.
	Path      []string
	CreatedAt time.Time
	Version   int64
}

// IsRoot reports whether s is its tenant's root scope.
func (s *Scope) IsRoot() bool { return s.ParentID == "" }

// Contains reports whether other is s or lies below s.
func (s *Scope) Contains(other *Scope) bool {
	for _, id := range other.Path {
		if id == s.ID {
			return true
		}
	}
	return false
}

// CreateRootScope returns the event that creates a tenant's root scope.
func CreateRootScope(scopeID string) (ScopeCreated, error) {
	if err := requireID("scopeId", scopeID); err != nil {
		return ScopeCreated{}, err
	}
	return ScopeCreated{ScopeID: scopeID, Name: RootScopeName, Path: []string{scopeID}}, nil
}

// CreateChild checks a new child scope of s and returns its event. The name is
// trimmed and 1..200 characters; uniqueness among siblings is checked by the
// caller against the sibling names (NameKey), which the domain does not hold.
func (s *Scope) CreateChild(scopeID, name string) (ScopeCreated, error) {
	if err := requireID("scopeId", scopeID); err != nil {
		return ScopeCreated{}, err
	}
	n, err := NormalizeName("name", name)
	if err != nil {
		return ScopeCreated{}, err
	}
	path := make([]string, 0, len(s.Path)+1)
	path = append(append(path, s.Path...), scopeID)
	return ScopeCreated{ScopeID: scopeID, ParentScopeID: s.ID, Name: n, Path: path}, nil
}

// ReplayScope rebuilds a scope from its stream; (nil, nil) when it is empty.
func ReplayScope(history []Recorded) (*Scope, error) {
	if len(history) == 0 {
		return nil, nil
	}
	s := &Scope{}
	for _, r := range history {
		if err := s.Apply(r); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Apply moves the scope forward by one recorded event.
func (s *Scope) Apply(r Recorded) error {
	switch e := r.Event.(type) {
	case ScopeCreated:
		if s.Version != 0 {
			return errCorrupt(fmt.Sprintf("scope %s created at version %d", e.ScopeID, r.Version))
		}
		if len(e.Path) == 0 || e.Path[len(e.Path)-1] != e.ScopeID {
			return errCorrupt(fmt.Sprintf("scope %s has path %v", e.ScopeID, e.Path))
		}
		s.ID, s.ParentID, s.Name = e.ScopeID, e.ParentScopeID, e.Name
		s.Path = append([]string(nil), e.Path...)
		s.CreatedAt = r.OccurredAt
	default:
		return errCorrupt(fmt.Sprintf("event %T in a scope stream", r.Event))
	}
	s.Version = r.Version
	return nil
}
