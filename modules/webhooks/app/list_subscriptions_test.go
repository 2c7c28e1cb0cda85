package app

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

const (
	tRoot = "scp_01JQ0000000000000000000001"
	tEU   = "scp_01JQ0000000000000000000002"
	tDE   = "scp_01JQ0000000000000000000003"
	tUS   = "scp_01JQ0000000000000000000004"
)

// pagedSubs is a ReadModel over a fixed list of subscriptions (newest
// first), paged by index; it counts the rows it reads.
type pagedSubs struct {
	ReadModel
	subs []SubscriptionView
	read int
}

func (p *pagedSubs) ListSubscriptions(_ context.Context, _, scopeID string, limit int, cursor string) ([]SubscriptionView, string, error) {
	var all []SubscriptionView
	for _, s := range p.subs {
		if scopeID == "" || s.ScopeID == scopeID {
			all = append(all, s)
		}
	}
	from := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil {
			return nil, "", ErrInvalidCursor
		}
		from = n
	}
	to := min(from+limit, len(all))
	p.read += to - from
	next := ""
	if to < len(all) {
		next = strconv.Itoa(to)
	}
	return all[from:to], next, nil
}

type fixedScopes struct{}

func (fixedScopes) ScopePath(_ context.Context, _, scopeID string) ([]string, error) {
	switch scopeID {
	case tRoot:
		return []string{tRoot}, nil
	case tEU, tUS:
		return []string{tRoot, scopeID}, nil
	case tDE:
		return []string{tRoot, tEU, tDE}, nil
	}
	return nil, errs.NotFound("scope")
}

func (fixedScopes) RootScopeID(context.Context, string) (string, error) { return tRoot, nil }

func callerWith(roles ...invocation.RoleBinding) (context.Context, *authz.Guard) {
	ctx := invocation.With(context.Background(), &invocation.Context{
		Principal: invocation.Principal{Kind: invocation.KindServiceAccount, ID: "sva_1", TenantID: "tnt_1", Roles: roles},
	})
	g := authz.NewGuard(authz.Roles{}, invocation.From(ctx).Principal, ActionListSubscriptions)
	return authz.WithGuard(ctx, g), g
}

func TestListSubscriptionsShowsWhatTheCallerMaySee(t *testing.T) {
	reads := &pagedSubs{}
	for i, path := range [][]string{{tRoot}, {tRoot, tEU}, {tRoot, tEU, tDE}, {tRoot, tUS}, {tRoot, tEU}} {
		reads.subs = append(reads.subs, SubscriptionView{
			SubscriptionID: "sub_" + strconv.Itoa(i), ScopeID: path[len(path)-1], ScopePath: path,
			Status: domain.SubscriptionStatus("enabled"),
		})
	}
	h := ListSubscriptionsHandler{Reads: reads, Scopes: fixedScopes{}}
	list := func(ctx context.Context, in ListSubscriptionsInput) []string {
		t.Helper()
		var ids []string
		for pages := 0; ; pages++ {
			out, err := h.Handle(ctx, in)
			if err != nil {
				t.Fatalf("list %+v: %v", in, err)
			}
			if in.Limit != nil && len(out.Items) > *in.Limit {
				t.Fatalf("page of %d items, limit %d", len(out.Items), *in.Limit)
			}
			for _, it := range out.Items {
				ids = append(ids, it.SubscriptionID)
			}
			if out.NextCursor == nil {
				return ids
			}
			if pages > len(reads.subs) {
				t.Fatal("the list does not end")
			}
			in.Cursor = *out.NextCursor
		}
	}
	for _, c := range []struct {
		name  string
		roles []invocation.RoleBinding
		in    ListSubscriptionsInput
		want  []string
	}{
		{"viewer at the root", []invocation.RoleBinding{{Role: "viewer", ScopeID: tRoot}}, ListSubscriptionsInput{Limit: new(2)},
			[]string{"sub_0", "sub_1", "sub_2", "sub_3", "sub_4"}},
		{"viewer at EU", []invocation.RoleBinding{{Role: "viewer", ScopeID: tEU}}, ListSubscriptionsInput{Limit: new(1)},
			[]string{"sub_1", "sub_2", "sub_4"}},
		{"viewer at DE and US", []invocation.RoleBinding{{Role: "viewer", ScopeID: tDE}, {Role: "viewer", ScopeID: tUS}}, ListSubscriptionsInput{Limit: new(2)},
			[]string{"sub_2", "sub_3"}},
		{"viewer at EU, scope EU", []invocation.RoleBinding{{Role: "viewer", ScopeID: tEU}}, ListSubscriptionsInput{ScopeID: tEU, Limit: new(1)},
			[]string{"sub_1", "sub_4"}},
		{"no bindings", nil, ListSubscriptionsInput{Limit: new(1)}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, g := callerWith(c.roles...)
			if got := list(ctx, c.in); !slices.Equal(got, c.want) {
				t.Errorf("listed %v, want %v", got, c.want)
			}
			if !g.Decided() || g.Denied() {
				t.Errorf("decided %v, denied %v: want an allowed decision", g.Decided(), g.Denied())
			}
		})
	}
	// A scope outside the caller's bindings is still a 403.
	ctx, _ := callerWith(invocation.RoleBinding{Role: "viewer", ScopeID: tEU})
	_, err := h.Handle(ctx, ListSubscriptionsInput{ScopeID: tUS})
	var e *errs.Error
	if !errors.As(err, &e) || e.Kind != errs.KindForbidden {
		t.Errorf("viewer at EU lists US: %v, want 403", err)
	}
}
