package app_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/audit/app"
	"github.com/switchboard-dev/switchboard/modules/audit/domain"
	_ "github.com/switchboard-dev/switchboard/modules/audit/ports" // registers the action (privileged: no viewer)
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

const (
	tenant = "tnt_01JQ00000000000000000000T1"
	root   = "scp_01JQ00000000000000000000R1"
)

// pagedLog serves entries newest first in pages, its cursor the index of
// the next entry, and records the limits asked for.
type pagedLog struct {
	entries []domain.Entry
	limits  []int
}

func (l *pagedLog) Append(context.Context, string, []domain.Entry) error { return nil }

func (l *pagedLog) List(_ context.Context, _ string, q app.Query) ([]domain.Entry, string, error) {
	l.limits = append(l.limits, q.Limit)
	from := 0
	if q.Cursor != "" {
		from, _ = strconv.Atoi(q.Cursor)
	}
	var page []domain.Entry
	i := from
	for ; i < len(l.entries) && len(page) < q.Limit; i++ {
		if q.Principal == "" || l.entries[i].Principal == q.Principal {
			page = append(page, l.entries[i])
		}
	}
	if i >= len(l.entries) {
		return page, "", nil
	}
	return page, strconv.Itoa(i), nil
}

type rootScopes struct{}

func (rootScopes) RootScopeID(context.Context, string) (string, error) { return root, nil }

func adminCtx() context.Context {
	p := invocation.Principal{Kind: invocation.KindServiceAccount, ID: "sva_1", TenantID: tenant,
		Roles: []invocation.RoleBinding{{Role: "admin", ScopeID: root}}}
	ctx := invocation.With(context.Background(), &invocation.Context{Principal: p})
	return authz.WithGuard(ctx, authz.NewGuard(authz.Roles{}, p, app.ActionListAuditLog))
}

// With principal and outcome, pages hold exactly limit matching entries
// (each store read asks for what is missing) and the cursor resumes after
// the last one: paging yields every match once, in order.
func TestListAuditLogFiltersPrincipalAndOutcome(t *testing.T) {
	log := &pagedLog{}
	for i := range 40 {
		outcome := domain.OutcomeAllowed
		if i%3 == 0 {
			outcome = domain.OutcomeDenied
		}
		log.entries = append(log.entries, domain.Entry{AuditID: fmt.Sprintf("aud_%02d", i), Principal: "service_account:sva_1", Outcome: outcome,
			At: time.Unix(int64(1000-i), 0)})
	}
	h := app.ListAuditLogHandler{Log: log, Scopes: rootScopes{}}
	var seen []string
	cursor := ""
	for pages := 0; pages < 20; pages++ {
		out, err := h.Handle(adminCtx(), app.ListAuditLogInput{Principal: "service_account:sva_1", Outcome: "denied", Limit: new(4), Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Items) > 4 || (out.NextCursor != nil && len(out.Items) != 4) {
			t.Fatalf("page of %d items, next %v", len(out.Items), out.NextCursor)
		}
		for _, it := range out.Items {
			if it.Outcome != "denied" {
				t.Fatalf("item %+v", it)
			}
			seen = append(seen, it.AuditID)
		}
		if out.NextCursor == nil {
			break
		}
		cursor = *out.NextCursor
	}
	if len(seen) != 14 || seen[0] != "aud_00" || seen[13] != "aud_39" {
		t.Fatalf("seen %v", seen)
	}
	if log.limits[0] != 4 || log.limits[1] >= 4 {
		t.Fatalf("store limits %v: the second read of a page asks only for what is missing", log.limits)
	}
}

// Bad input is a 400 with the fields named; a caller without the action a 403.
func TestListAuditLogRefuses(t *testing.T) {
	h := app.ListAuditLogHandler{Log: &pagedLog{}, Scopes: rootScopes{}}
	for _, in := range []app.ListAuditLogInput{
		{From: "yesterday"}, {To: "2026-13-01T00:00:00Z"}, {From: "2026-01-02T00:00:00Z", To: "2026-01-01T00:00:00Z"},
		{Principal: "sva#1"}, {Limit: new(101)}, {Limit: new(0)}, {To: "9999-12-31T23:00:00-05:00"},
	} {
		if _, err := h.Handle(adminCtx(), in); errs.KindOf(err) != errs.KindInvalid {
			t.Errorf("%+v: %v, want invalid", in, err)
		}
	}
	p := invocation.Principal{Kind: invocation.KindServiceAccount, ID: "sva_2", TenantID: tenant,
		Roles: []invocation.RoleBinding{{Role: "viewer", ScopeID: root}}}
	ctx := invocation.With(context.Background(), &invocation.Context{Principal: p})
	ctx = authz.WithGuard(ctx, authz.NewGuard(authz.Roles{}, p, app.ActionListAuditLog))
	if _, err := h.Handle(ctx, app.ListAuditLogInput{}); errs.KindOf(err) != errs.KindForbidden {
		t.Fatalf("viewer: %v, want forbidden", err)
	}
}
