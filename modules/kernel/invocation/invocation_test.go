package invocation_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

const (
	invID    = "inv_01JD0000000000000000000I01"
	actionID = "01JD0000000000000000000A01"
	traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	tenantID = "tnt_01JD0000000000000000000T01"
	svaID    = "sva_01JD0000000000000000000S01"
)

func TestFromBareContextIsEmptyAndNonNil(t *testing.T) {
	c := invocation.From(context.Background())
	if c == nil {
		t.Fatal("From(bare ctx) = nil")
	}
	if !reflect.DeepEqual(*c, invocation.Context{}) {
		t.Fatalf("From(bare ctx) = %+v, want empty", *c)
	}
	if c.TenantID() != "" || c.Principal.String() != "anonymous" {
		t.Fatalf("empty context: tenant %q, principal %q", c.TenantID(), c.Principal)
	}
	// A nil *Context stored in ctx reads as empty too.
	if c := invocation.From(invocation.With(context.Background(), nil)); c == nil {
		t.Fatal("From(With(ctx, nil)) = nil")
	}
}

func TestWithFromRoundTrip(t *testing.T) {
	debug := slog.LevelDebug
	c := &invocation.Context{
		InvocationID: invID, ActionID: actionID, TraceID: traceID, Trigger: "http", Locale: "de",
		Principal: invocation.Principal{Kind: invocation.KindServiceAccount, ID: svaID, TenantID: tenantID},
		Toggles:   invocation.Toggles{LogLevel: &debug},
	}
	parent := context.Background()
	ctx := invocation.With(parent, c)
	if got := invocation.From(ctx); got != c {
		t.Fatalf("From(With(ctx, c)) = %p, want the same context %p", got, c)
	}
	if invocation.From(parent).InvocationID != "" {
		t.Fatal("With changed the parent context")
	}
	// It survives derived contexts, and the innermost With wins.
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	if invocation.From(child) != c {
		t.Fatal("From(derived ctx) lost the invocation context")
	}
	other := &invocation.Context{InvocationID: "inv_other"}
	if invocation.From(invocation.With(child, other)) != other {
		t.Fatal("the innermost With must win")
	}
	if c.TenantID() != tenantID {
		t.Fatalf("TenantID() = %q, want %q", c.TenantID(), tenantID)
	}
}

func TestPrincipalString(t *testing.T) {
	tests := []struct {
		p    invocation.Principal
		want string
	}{
		{invocation.Principal{}, "anonymous"},
		{invocation.Principal{ID: "someone"}, "anonymous"},
		{invocation.Principal{Kind: invocation.KindOperator, ID: "operator"}, "operator"},
		{invocation.Principal{Kind: invocation.KindOperator}, "operator"},
		{invocation.Principal{Kind: invocation.KindSystem, ID: "system", TenantID: tenantID}, "system"},
		{invocation.Principal{Kind: invocation.KindServiceAccount, ID: svaID, TenantID: tenantID, CredentialID: "key_x"}, "service_account:" + svaID},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestPrincipalKindsArePersistedNames(t *testing.T) {
	for kind, want := range map[invocation.PrincipalKind]string{
		invocation.KindAnonymous: "", invocation.KindOperator: "operator",
		invocation.KindServiceAccount: "service_account", invocation.KindSystem: "system",
	} {
		if string(kind) != want {
			t.Errorf("kind %q, want %q", kind, want)
		}
	}
	b, err := json.Marshal(invocation.Principal{Kind: invocation.KindServiceAccount, ID: svaID, TenantID: tenantID,
		Roles: []invocation.RoleBinding{{Role: "admin", ScopeID: "scp_1"}}})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"kind":"service_account","id":"` + svaID + `","tenantId":"` + tenantID + `","roles":[{"role":"admin","scopeId":"scp_1"}]}`
	if string(b) != want {
		t.Fatalf("principal JSON = %s, want %s", b, want)
	}
}

func TestMeta(t *testing.T) {
	c := &invocation.Context{
		InvocationID: invID, ActionID: actionID, TraceID: traceID, ParentSpanID: "00f067aa0ba902b7",
		IdempotencyKey: "k1", Trigger: "http", Locale: "en",
		Principal: invocation.Principal{Kind: invocation.KindServiceAccount, ID: svaID, TenantID: tenantID},
	}
	want := invocation.Meta{InvocationID: invID, ActionID: actionID, TraceID: traceID, Principal: "service_account:" + svaID}
	if got := c.Meta(); got != want {
		t.Fatalf("Meta() = %+v, want %+v", got, want)
	}
	b, err := json.Marshal(invocation.Meta{InvocationID: invID, TraceID: traceID, Principal: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"invocationId":"` + invID + `","traceId":"` + traceID + `","principal":"operator"}`
	if string(b) != wantJSON {
		t.Fatalf("Meta JSON = %s, want %s (actionId omitted when empty)", b, wantJSON)
	}
}

func TestFromMetaActsAsSystem(t *testing.T) {
	m := invocation.Meta{InvocationID: invID, ActionID: actionID, TraceID: traceID, Principal: "service_account:" + svaID}
	c := invocation.FromMeta(m, "worker", tenantID)
	want := invocation.Context{
		InvocationID: invID, ActionID: actionID, TraceID: traceID, Trigger: "worker",
		Principal: invocation.Principal{Kind: invocation.KindSystem, ID: "system", TenantID: tenantID},
	}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("FromMeta = %+v, want %+v", *c, want)
	}
	if c.TenantID() != tenantID || c.Principal.String() != "system" {
		t.Fatalf("FromMeta acts as %s in %q", c.Principal, c.TenantID())
	}
	// The work it records carries the cause's ids, as the system.
	if got, wantMeta := c.Meta(), (invocation.Meta{InvocationID: invID, ActionID: actionID, TraceID: traceID, Principal: "system"}); got != wantMeta {
		t.Fatalf("FromMeta(...).Meta() = %+v, want %+v", got, wantMeta)
	}
	// The cause's roles never carry over: the system has none.
	if len(c.Principal.Roles) != 0 || c.Principal.CredentialID != "" {
		t.Fatalf("FromMeta principal = %+v", c.Principal)
	}
}

func attrMap(attrs []slog.Attr) map[string]string {
	m := map[string]string{}
	for _, a := range attrs {
		m[a.Key] = a.Value.String()
	}
	return m
}

func TestLogAttrs(t *testing.T) {
	full := &invocation.Context{
		InvocationID: invID, ActionID: actionID, TraceID: traceID, Trigger: "http",
		IdempotencyKey: "secret-ish-key", Locale: "en",
		Principal: invocation.Principal{Kind: invocation.KindServiceAccount, ID: svaID, TenantID: tenantID},
	}
	got := attrMap(full.LogAttrs())
	want := map[string]string{
		"invocationId": invID, "traceId": traceID, "actionId": actionID, "trigger": "http",
		"principal": "service_account:" + svaID, "tenantId": tenantID,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LogAttrs = %v, want %v", got, want)
	}
	if keys := full.LogAttrs(); keys[0].Key != "invocationId" || keys[1].Key != "traceId" {
		t.Fatalf("LogAttrs must start with invocationId, traceId: %v", keys)
	}

	// Optional attributes are left out when empty; operator has no tenant.
	op := &invocation.Context{InvocationID: invID, TraceID: traceID, Principal: invocation.Principal{Kind: invocation.KindOperator, ID: "operator"}}
	got = attrMap(op.LogAttrs())
	want = map[string]string{"invocationId": invID, "traceId": traceID, "principal": "operator"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("operator LogAttrs = %v, want %v", got, want)
	}

	anon := &invocation.Context{InvocationID: invID, TraceID: traceID}
	got = attrMap(anon.LogAttrs())
	want = map[string]string{"invocationId": invID, "traceId": traceID}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("anonymous LogAttrs = %v, want %v", got, want)
	}
}

func TestTraceparentAndTraceIDs(t *testing.T) {
	const trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	if gotT, gotS := invocation.ParseTraceparent("00-" + trace + "-" + span + "-01"); gotT != trace || gotS != span {
		t.Fatalf("valid traceparent: %q %q", gotT, gotS)
	}
	for _, bad := range []string{"", "garbage", "00-" + strings.Repeat("0", 32) + "-" + span + "-01",
		"ff-" + trace + "-" + span + "-01", "00-" + strings.ToUpper(trace) + "-" + span + "-01", "00-" + trace + "-xyz-01"} {
		if gotT, _ := invocation.ParseTraceparent(bad); gotT != "" {
			t.Errorf("ParseTraceparent(%q) = %q, want none", bad, gotT)
		}
	}
	a, b := invocation.NewTraceID(), invocation.NewTraceID()
	if !invocation.ValidTraceID(a) || a == b {
		t.Fatalf("NewTraceID: %q %q", a, b)
	}
}
