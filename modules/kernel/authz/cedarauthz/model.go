package cedarauthz

import (
	_ "embed" // the schema
	"fmt"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	sast "github.com/cedar-policy/cedar-go/x/exp/schema/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
)

//go:embed schema.cedarschema
var schemaText []byte

// Namespace is the Cedar namespace of every entity type and action.
const Namespace = "Switchboard"

// Entity types of the model.
const (
	ScopeType          types.EntityType = Namespace + "::Scope"
	TenantType         types.EntityType = Namespace + "::Tenant"
	ChannelType        types.EntityType = Namespace + "::Channel"
	MessageType        types.EntityType = Namespace + "::Message"
	SubscriptionType   types.EntityType = Namespace + "::Subscription"
	ServiceAccountType types.EntityType = Namespace + "::ServiceAccount"
	ActionType         types.EntityType = Namespace + "::Action"
)

// Action groups: every catalogue action is in GroupAll; those that only
// read are also in GroupRead and in their namespace's ReadGroup.
const (
	GroupAll  = "all"
	GroupRead = "read"
)

// ReadGroup is the group of a namespace's reads ("messaging:read").
func ReadGroup(namespace string) string { return namespace + ":" + GroupRead }

// EntityType maps a resource type (authz.Resource.Type) to its entity type.
func EntityType(resourceType string) (types.EntityType, bool) {
	t, ok := resourceTypes[resourceType]
	return t, ok
}

var resourceTypes = map[string]types.EntityType{
	authz.ResourceTenant:         TenantType,
	authz.ResourceScope:          ScopeType,
	authz.ResourceChannel:        ChannelType,
	authz.ResourceMessage:        MessageType,
	authz.ResourceSubscription:   SubscriptionType,
	authz.ResourceServiceAccount: ServiceAccountType,
}

// Schema returns the whole schema for a catalogue, in Cedar's schema syntax:
// schema.cedarschema with the catalogue's actions and read groups added.
func Schema(actions []authz.Action) ([]byte, error) {
	s, err := buildSchema(actions)
	if err != nil {
		return nil, err
	}
	return s.MarshalCedar()
}

// model is the resolved schema of a catalogue: the validator of policies and
// the action entities (each with its groups as parents, transitively).
type model struct {
	validator *validate.Validator
	actions   map[string]types.Entity
	groups    map[types.EntityUID]types.Entity
}

func buildSchema(actions []authz.Action) (*schema.Schema, error) {
	var s schema.Schema
	s.SetFilename("schema.cedarschema")
	if err := s.UnmarshalCedar(schemaText); err != nil {
		return nil, fmt.Errorf("cedarauthz: parse schema: %w", err)
	}
	root := s.AST()
	ns, ok := root.Namespaces[Namespace]
	if !ok {
		return nil, fmt.Errorf("cedarauthz: the schema declares no namespace %s", Namespace)
	}
	if ns.Actions == nil {
		ns.Actions = sast.Actions{}
	}
	for _, act := range actions {
		name := types.String(act.Name)
		if _, dup := ns.Actions[name]; dup {
			return nil, fmt.Errorf("cedarauthz: action %q declared twice", act.Name)
		}
		parents := []sast.ParentRef{sast.ParentRefFromID(GroupAll)}
		if act.ReadOnly && !act.Privileged {
			group := types.String(ReadGroup(act.Namespace()))
			if _, ok := ns.Actions[group]; !ok {
				ns.Actions[group] = sast.Action{Parents: []sast.ParentRef{sast.ParentRefFromID(GroupRead)}}
			}
			parents = append(parents, sast.ParentRefFromID(group))
		}
		var res []sast.EntityTypeRef
		for _, r := range act.Resources {
			t, ok := resourceTypes[r]
			if !ok {
				return nil, fmt.Errorf("cedarauthz: action %q: resource type %q has no entity type", act.Name, r)
			}
			res = append(res, sast.EntityTypeRef(strings.TrimPrefix(string(t), Namespace+"::")))
		}
		ns.Actions[name] = sast.Action{Parents: parents, AppliesTo: &sast.AppliesTo{
			Principals: []sast.EntityTypeRef{"ServiceAccount"}, Resources: res, Context: sast.RecordType{},
		}}
	}
	root.Namespaces[Namespace] = ns
	return schema.NewSchemaFromAST(root), nil
}

func newModel(actions []authz.Action) (*model, error) {
	s, err := buildSchema(actions)
	if err != nil {
		return nil, err
	}
	r, err := s.Resolve()
	if err != nil {
		return nil, fmt.Errorf("cedarauthz: resolve schema: %w", err)
	}
	if err := checkEntityTypes(r); err != nil {
		return nil, err
	}
	m := &model{validator: validate.New(r), actions: map[string]types.Entity{}, groups: map[types.EntityUID]types.Entity{}}
	for uid := range r.Actions {
		e := types.Entity{UID: uid, Parents: types.NewEntityUIDSet(ancestors(r, uid)...)}
		if r.Actions[uid].AppliesTo == nil {
			m.groups[uid] = e
		} else {
			m.actions[string(uid.ID)] = e
		}
	}
	for _, act := range actions {
		if _, ok := m.actions[act.Name]; !ok {
			return nil, fmt.Errorf("cedarauthz: action %q missing from the resolved schema", act.Name)
		}
	}
	return m, nil
}

// checkEntityTypes makes sure the schema is the model this package builds
// entities for: every resource type a child of Scope, service accounts
// tagged with sets of scopes.
func checkEntityTypes(r *resolved.Schema) error {
	for _, t := range resourceTypes {
		e, ok := r.Entities[t]
		if !ok {
			return fmt.Errorf("cedarauthz: the schema declares no entity type %s", t)
		}
		in := false
		for _, p := range e.ParentTypes {
			in = in || p == ScopeType
		}
		if !in {
			return fmt.Errorf("cedarauthz: entity type %s is not in %s", t, ScopeType)
		}
	}
	if tags, ok := r.Entities[ServiceAccountType].Tags.(resolved.SetType); !ok || tags.Element != resolved.EntityType(ScopeType) {
		return fmt.Errorf("cedarauthz: %s must have tags Set<Scope> (its role bindings)", ServiceAccountType)
	}
	return nil
}

// ancestors are the groups an action is in, transitively: the entity then
// answers "action in group" without a walk.
func ancestors(r *resolved.Schema, uid types.EntityUID) []types.EntityUID {
	var out []types.EntityUID
	seen := map[types.EntityUID]bool{uid: true}
	pending := []types.EntityUID{uid}
	for len(pending) > 0 {
		cur := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		for p := range r.Actions[cur].Entity.Parents.All() {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
				pending = append(pending, p)
			}
		}
	}
	return out
}

// validate checks a policy against the schema (strict mode).
func (m *model) validate(id string, p *cedar.Policy) error {
	if err := m.validator.Policy(id, (*xast.Policy)(p.AST())); err != nil {
		return fmt.Errorf("policy %s does not validate against the schema: %w", id, err)
	}
	return nil
}
