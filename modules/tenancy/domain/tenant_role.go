package domain

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// Bounds of tenant roles: a role's actions and a tenant's roles are few (the
// authorizer evaluates one policy per role of the tenant for a principal
// holding one of them).
const (
	MaxRoleActions = 100
	MaxTenantRoles = 100
)

// TenantRole is a role defined by a tenant: a name (for people; unique in
// the tenant, case-insensitively, and not a built-in role's) and the
// catalogue actions it grants where it is bound. It is usable wherever a
// built-in role is; bindings name it by its id ("rol_...").
type TenantRole struct {
	ID        string
	Name      string
	Actions   []string // sorted, distinct
	CreatedAt time.Time
	Version   int64
}

// CreateRole checks a new role. inCatalogue says whether an action exists.
// Errors: 400 errors.tenancy.invalid_name; errors.tenancy.no_actions;
// errors.tenancy.too_many_actions; errors.tenancy.unknown_action, one field
// error per bad entry ("actions[i]", with the value); 409
// ErrRoleNameTaken for a built-in role's name.
func CreateRole(roleID, name string, actions []string, inCatalogue func(string) bool) (RoleCreated, error) {
	if err := requireID("roleId", roleID); err != nil {
		return RoleCreated{}, err
	}
	n, err := NormalizeName("name", name)
	if err != nil {
		return RoleCreated{}, err
	}
	if _, err := ParseRole(NameKey(n)); err == nil {
		return RoleCreated{}, ErrRoleNameTaken // admin, sender, viewer (a role id is no name either)
	}
	switch {
	case len(actions) == 0:
		return RoleCreated{}, invalid("actions", CodeNoActions)
	case len(actions) > MaxRoleActions:
		return RoleCreated{}, invalid("actions", CodeTooManyActions).With("max", MaxRoleActions)
	}
	var bad []errs.FieldError
	for i, a := range actions {
		if !inCatalogue(a) {
			bad = append(bad, errs.FieldError{Field: "actions[" + strconv.Itoa(i) + "]", Code: CodeUnknownAction,
				Params: map[string]any{"value": a}})
		}
	}
	if len(bad) > 0 {
		e := &errs.Error{Kind: errs.KindInvalid, Code: CodeUnknownAction, Fields: bad}
		return RoleCreated{}, e
	}
	acts := slices.Clone(actions)
	slices.Sort(acts)
	return RoleCreated{RoleID: roleID, Name: n, Actions: slices.Compact(acts)}, nil
}

// ReplayTenantRole rebuilds a role; (nil, nil) when its stream is empty.
func ReplayTenantRole(history []Recorded) (*TenantRole, error) {
	if len(history) == 0 {
		return nil, nil
	}
	r := &TenantRole{}
	for _, rec := range history {
		e, ok := rec.Event.(RoleCreated)
		if !ok || r.Version != 0 {
			return nil, errCorrupt(fmt.Sprintf("event %s at version %d of a role stream", rec.Event.EventType(), rec.Version))
		}
		r.ID, r.Name, r.Actions, r.CreatedAt, r.Version = e.RoleID, e.Name, slices.Clone(e.Actions), rec.OccurredAt, rec.Version
	}
	return r, nil
}
