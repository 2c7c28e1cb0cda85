package messaging_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/messaging"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters/sandbox"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
	"github.com/switchboard-dev/switchboard/modules/messaging/ports"
	"github.com/switchboard-dev/switchboard/modules/tenancy"
	tenancyapp "github.com/switchboard-dev/switchboard/modules/tenancy/app"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.UTC)

const operatorKey = "sbo_messaging-test"

// counting is the store with counters of the reads and commits.
type counting struct {
	*boltstore.Store
	mu                                  sync.Mutex
	getRecord, readStream, list, commit int
}

func (c *counting) GetRecord(ctx context.Context, tenantID, collection, key string) (eventstore.Record, error) {
	c.mu.Lock()
	c.getRecord++
	c.mu.Unlock()
	return c.Store.GetRecord(ctx, tenantID, collection, key)
}

func (c *counting) ReadStream(ctx context.Context, tenantID, streamID string, from int64, limit int) ([]eventstore.Event, error) {
	c.mu.Lock()
	c.readStream++
	c.mu.Unlock()
	return c.Store.ReadStream(ctx, tenantID, streamID, from, limit)
}

func (c *counting) ListRecords(ctx context.Context, tenantID string, q eventstore.ListQuery) ([]eventstore.Record, string, error) {
	c.mu.Lock()
	c.list++
	c.mu.Unlock()
	return c.Store.ListRecords(ctx, tenantID, q)
}

func (c *counting) Commit(ctx context.Context, cm *eventstore.Commit) error {
	c.mu.Lock()
	c.commit++
	c.mu.Unlock()
	return c.Store.Commit(ctx, cm)
}

func (c *counting) reset() {
	c.mu.Lock()
	c.getRecord, c.readStream, c.list, c.commit = 0, 0, 0, 0
	c.mu.Unlock()
}

// acme is a provider of tests that requires an "apiKey" credential; it has no
// inbound secret (only the sandbox has one).
type acme struct{}

func (acme) Name() string { return "acme" }
func (acme) CheckChannel(_ domain.ChannelType, _ string, _, creds map[string]string) error {
	if creds["apiKey"] == "" {
		return errs.Invalid(errs.FieldError{Field: "credentials.apiKey", Code: "errors.validation.required"})
	}
	return nil
}
func (acme) Send(context.Context, app.SendRequest) (app.SendResult, error) {
	return app.SendResult{}, errors.New("acme: not in tests")
}
func (acme) VerifyWebhook([]byte, http.Header, []byte, time.Time) (string, error) {
	return "", app.ErrBadSignature
}
func (acme) ParseWebhook([]byte) (app.ProviderEvent, error) {
	return app.ProviderEvent{}, errs.Invalid()
}

type env struct {
	store   *counting
	clock   *clock.Fixed
	ids     *ids.Sequence
	sealer  secrets.Sealer
	tenancy *tenancy.Module
	mod     *messaging.Module
	app     *app.Application
	server  *rpc.Server
	work    *work.Registry
}

func newEnv(t testing.TB) *env {
	t.Helper()
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	e := &env{store: &counting{Store: bolt}, clock: clock.NewFixed(t0), ids: ids.NewSequence(t0), work: work.NewRegistry()}
	keyring, err := secrets.NewLocalKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	e.sealer = secrets.NewEnvelope(keyring, secrets.WithClock(e.clock))
	e.tenancy = tenancy.New(tenancy.Deps{Store: e.store, IDs: e.ids, Clock: e.clock})
	runner := &uow.Runner{Store: e.store}
	sb := sandbox.New(sandbox.Deps{Store: e.store, Runner: runner, Sealer: e.sealer, IDs: e.ids, Clock: e.clock})
	e.mod = messaging.New(messaging.Deps{
		Store: e.store, Runner: runner, Sealer: e.sealer, Scopes: e.tenancy,
		Providers: app.Providers{sandbox.Name: sb, "acme": acme{}},
		IDs:       e.ids, Clock: e.clock, PublicURL: "https://sb.example.com/",
	})
	e.app = e.mod.App()
	e.mod.RegisterWork(e.work)
	e.server = rpc.NewServer(rpc.Config{
		Auth:  &auth.Authenticator{OperatorKeyHash: auth.HashSecret(operatorKey), Keys: e.tenancy.APIKeys()},
		Store: e.store, Sealer: e.sealer, Runner: runner, IDs: e.ids, Clock: e.clock,
	})
	e.server.Register(e.tenancy.Endpoints()...)
	e.server.Register(e.mod.Endpoints()...)
	for p, h := range e.mod.Routes() {
		e.server.Handle(p, h)
	}
	return e
}

// tenant is an onboarded tenant with a scope tree root > eu > de, root > us.
type tenant struct {
	tenancyapp.OnboardTenantOutput
	eu, de, us string
}

func (e *env) onboard(t testing.TB, name string) tenant {
	t.Helper()
	op := invocation.With(context.Background(), &invocation.Context{InvocationID: e.ids.New(ids.Invocation), TraceID: invocation.NewTraceID(),
		Principal: invocation.Principal{Kind: invocation.KindOperator, ID: "operator"}})
	out, err := e.tenancy.App().Commands.OnboardTenant.Handle(op, tenancyapp.OnboardTenantInput{Name: name, Tier: "pooled"})
	if err != nil {
		t.Fatal(err)
	}
	tn := tenant{OnboardTenantOutput: out}
	scope := func(parent, name string) string {
		ctx := e.as(tn, "tenancy:create-scope", "admin", out.RootScopeID)
		s, err := e.tenancy.App().Commands.CreateScope.Handle(ctx, tenancyapp.CreateScopeInput{ParentScopeID: parent, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return s.ScopeID
	}
	tn.eu = scope(out.RootScopeID, "eu")
	tn.de = scope(tn.eu, "de")
	tn.us = scope(out.RootScopeID, "us")
	return tn
}

// as is a call of action by a service account of tn holding role at scope,
// with the guard the edge installs.
func (e *env) as(tn tenant, action, role, scope string) context.Context {
	ctx := invocation.With(context.Background(), &invocation.Context{
		InvocationID: e.ids.New(ids.Invocation), TraceID: invocation.NewTraceID(), Trigger: "http",
		Principal: invocation.Principal{Kind: invocation.KindServiceAccount, ID: "sva_test", TenantID: tn.TenantID,
			Roles: []invocation.RoleBinding{{Role: role, ScopeID: scope}}},
	})
	return authz.WithGuard(ctx, authz.NewGuard(authz.Roles{}, invocation.From(ctx).Principal, action))
}

func (e *env) admin(tn tenant, action string) context.Context {
	return e.as(tn, action, "admin", tn.RootScopeID)
}

func (e *env) channel(t testing.TB, tn tenant, scope string, typ domain.ChannelType) string {
	t.Helper()
	from := "+15550001111"
	if typ == domain.ChannelEmail {
		from = "noreply@example.com"
	}
	out, err := e.app.Commands.CreateChannel.Handle(e.admin(tn, ports.ActionCreateChannel), app.CreateChannelInput{
		ScopeID: scope, Name: "ch", Type: string(typ), Provider: "sandbox", From: from,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.ChannelID
}

func (e *env) send(t *testing.T, ctx context.Context, channelID, to string) string {
	t.Helper()
	out, err := e.app.Commands.SendMessage.Handle(ctx, app.SendMessageInput{ChannelID: channelID, To: to, Content: domain.Content{Text: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	return out.MessageID
}

func wantErr(t *testing.T, err error, kind errs.Kind, code string) *errs.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s", code)
	}
	e := errs.As(err)
	if e.Kind != kind || e.Code != code {
		t.Fatalf("err = %v (kind %d, code %s), want kind %d code %s", err, e.Kind, e.Code, kind, code)
	}
	return e
}

func fieldCodes(err error) []string {
	var out []string
	for _, f := range errs.As(err).Fields {
		out = append(out, f.Field+"="+f.Code)
	}
	return out
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestCreateChannelSealsSecretsAndNeverShowsThem(t *testing.T) {
	e := newEnv(t)
	tn := e.onboard(t, "Acme")
	ctx := context.Background()
	e.clock.Advance(time.Second)
	out, err := e.app.Commands.CreateChannel.Handle(e.admin(tn, ports.ActionCreateChannel), app.CreateChannelInput{
		ScopeID: tn.eu, Name: "  Alerts ", Type: "sms", Provider: "sandbox", From: "+15550001111",
		Config: map[string]string{"region": "eu"}, Credentials: map[string]string{"token": "s3cr3t-token"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ids.Valid(ids.Channel, out.ChannelID) || out.InboundWebhookURL != "https://sb.example.com/webhooks/sandbox/"+out.ChannelID {
		t.Fatalf("out = %+v", out)
	}
	raw, ok := strings.CutPrefix(out.InboundSecret, "whsec_")
	if key, err := base64.StdEncoding.DecodeString(raw); !ok || err != nil || len(key) != 24 {
		t.Fatalf("inbound secret %q is not whsec_<base64 of 24 bytes>", out.InboundSecret)
	}

	// The stream holds the secrets sealed for this tenant and purpose only.
	evs, err := e.store.ReadStream(ctx, tn.TenantID, adapters.ChannelStream(out.ChannelID), 1, 0)
	if err != nil || len(evs) != 1 || evs[0].Type != domain.TypeChannelCreated {
		t.Fatalf("stream = %+v, %v", evs, err)
	}
	if bytes.Contains(evs[0].Data, []byte("s3cr3t-token")) || bytes.Contains(evs[0].Data, []byte(raw)) {
		t.Fatalf("a secret in clear in the stream: %s", evs[0].Data)
	}
	var created domain.ChannelCreated
	if err := json.Unmarshal(evs[0].Data, &created); err != nil {
		t.Fatal(err)
	}
	creds, err := e.sealer.Open(ctx, tn.TenantID, app.PurposeCredentials, created.SealedCredentials)
	if err != nil || string(creds) != `{"token":"s3cr3t-token"}` {
		t.Fatalf("credentials open to %s, %v", creds, err)
	}
	secret, err := e.sealer.Open(ctx, tn.TenantID, app.PurposeInboundSecret, created.SealedInboundSecret)
	if err != nil || string(secret) != out.InboundSecret {
		t.Fatalf("inbound secret opens to %q, %v", secret, err)
	}
	if _, err := e.sealer.Open(ctx, "tnt_other", app.PurposeCredentials, created.SealedCredentials); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("credentials opened for another tenant: %v", err)
	}
	if _, err := e.sealer.Open(ctx, tn.TenantID, app.PurposeInboundSecret, created.SealedCredentials); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("credentials opened for another purpose: %v", err)
	}

	// get-channel shows no secret; the row holds none either.
	got, err := e.app.Queries.GetChannel.Handle(e.as(tn, ports.ActionGetChannel, "viewer", tn.eu), app.GetChannelInput{ChannelID: out.ChannelID})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"channelId":"` + out.ChannelID + `","scopeId":"` + tn.eu + `","name":"Alerts","type":"sms","provider":"sandbox",` +
		`"from":"+15550001111","config":{"region":"eu"},"inboundWebhookUrl":"https://sb.example.com/webhooks/sandbox/` + out.ChannelID + `",` +
		`"createdAt":"2025-03-04T05:06:08.891Z"}`
	if js(got) != want {
		t.Fatalf("get-channel = %s\nwant        %s", js(got), want)
	}
	row, _ := e.store.GetRecord(ctx, tn.TenantID, adapters.CollectionChannels, out.ChannelID)
	if bytes.Contains(row.Data, []byte("s3cr3t")) || bytes.Contains(row.Data, []byte("sealed")) || bytes.Contains(row.Data, []byte(raw)) {
		t.Fatalf("channel row holds a secret: %s", row.Data)
	}

	// Another provider: no inbound secret, and its own rules apply.
	_, err = e.app.Commands.CreateChannel.Handle(e.admin(tn, ports.ActionCreateChannel), app.CreateChannelInput{
		ScopeID: tn.RootScopeID, Name: "Mail", Type: "email", Provider: "acme", From: "noreply@example.com",
	})
	if got := fieldCodes(err); !reflect.DeepEqual(got, []string{"credentials.apiKey=errors.validation.required"}) {
		t.Fatalf("acme without credentials: %v (%v)", got, err)
	}
	mail, err := e.app.Commands.CreateChannel.Handle(e.admin(tn, ports.ActionCreateChannel), app.CreateChannelInput{
		ScopeID: tn.RootScopeID, Name: "Mail", Type: "email", Provider: "acme", From: "noreply@example.com",
		Credentials: map[string]string{"apiKey": "k"},
	})
	if err != nil || mail.InboundSecret != "" || strings.Contains(js(mail), "inboundSecret") || mail.InboundWebhookURL != "https://sb.example.com/webhooks/acme/"+mail.ChannelID {
		t.Fatalf("acme channel = %s, %v", js(mail), err)
	}
	if ch, _ := e.mod.App().Queries.GetChannel.Handle(e.admin(tn, ports.ActionGetChannel), app.GetChannelInput{ChannelID: mail.ChannelID}); js(ch.Config) != "{}" {
		t.Fatalf("empty config = %s", js(ch.Config))
	}
}

func TestCreateChannelRefusals(t *testing.T) {
	e := newEnv(t)
	tn := e.onboard(t, "Acme")
	other := e.onboard(t, "Globex")
	valid := app.CreateChannelInput{ScopeID: tn.eu, Name: "n", Type: "sms", Provider: "sandbox", From: "+15550001111"}
	create := func(ctx context.Context, edit func(*app.CreateChannelInput)) error {
		in := valid
		edit(&in)
		_, err := e.app.Commands.CreateChannel.Handle(ctx, in)
		return err
	}
	admin := e.admin(tn, ports.ActionCreateChannel)
	for _, scope := range []string{e.ids.New(ids.Scope), "scp_nope", "", other.RootScopeID, other.eu} {
		err := create(admin, func(in *app.CreateChannelInput) { in.ScopeID = scope })
		if wantErr(t, err, errs.KindNotFound, errs.CodeNotFound).Params["resource"] != "scope" {
			t.Fatalf("scope %q: %v", scope, err)
		}
	}
	err := create(admin, func(in *app.CreateChannelInput) { in.Name, in.Type, in.Provider, in.From = " ", "fax", "nope", "" })
	wantErr(t, err, errs.KindInvalid, errs.CodeValidation)
	if got, want := fieldCodes(err), []string{"name=errors.validation.required", "type=errors.validation.one_of", "provider=errors.validation.one_of"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("fields = %v, want %v", got, want)
	}
	err = create(admin, func(in *app.CreateChannelInput) { in.Provider, in.From = "", "not a number" })
	if got, want := fieldCodes(err), []string{"from=errors.validation.sender", "provider=errors.validation.required"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("fields = %v, want %v", got, want)
	}
	if p := errs.As(err).Fields; len(p) == 0 {
		t.Fatal("no fields")
	}
	// Admin only, at the scope or above it.
	wantErr(t, create(e.as(tn, ports.ActionCreateChannel, "sender", tn.RootScopeID), func(*app.CreateChannelInput) {}), errs.KindForbidden, errs.CodeForbidden)
	wantErr(t, create(e.as(tn, ports.ActionCreateChannel, "admin", tn.us), func(*app.CreateChannelInput) {}), errs.KindForbidden, errs.CodeForbidden)
	if err := create(e.as(tn, ports.ActionCreateChannel, "admin", tn.eu), func(in *app.CreateChannelInput) { in.ScopeID = tn.de }); err != nil {
		t.Fatalf("admin of eu in de: %v", err)
	}
	page, err := e.app.Queries.ListChannels.Handle(e.admin(tn, ports.ActionListChannels), app.ListChannelsInput{})
	if err != nil || len(page.Items) != 1 || page.Items[0].ScopeID != tn.de {
		t.Fatalf("channels after refusals: %s, %v", js(page), err)
	}
}

func TestSendMessage(t *testing.T) {
	e := newEnv(t)
	tn := e.onboard(t, "Acme")
	sms := e.channel(t, tn, tn.eu, domain.ChannelSMS)
	mail := e.channel(t, tn, tn.us, domain.ChannelEmail)
	ctx := context.Background()
	e.clock.Advance(2 * time.Second)
	before, _ := e.store.PendingOutbox(ctx, t0.Add(48*time.Hour), 100)

	out, err := e.app.Commands.SendMessage.Handle(e.as(tn, ports.ActionSendMessage, "sender", tn.eu), app.SendMessageInput{
		ChannelID: sms, To: "+15551230000", Content: domain.Content{Text: "Your code is 1234"}, Metadata: map[string]string{"orderId": "42"},
	})
	if err != nil || out.Status != "queued" || !ids.Valid(ids.Message, out.MessageID) {
		t.Fatalf("send = %+v, %v", out, err)
	}
	sendAt := "2025-03-04T07:06:10.5+02:00" // 05:06:10.500Z, 609 ms ahead
	sched, err := e.app.Commands.SendMessage.Handle(e.as(tn, ports.ActionSendMessage, "sender", tn.RootScopeID), app.SendMessageInput{
		ChannelID: mail, To: "ann@example.com", Content: domain.Content{Subject: "Hi", HTML: "<p>Hi</p>"}, SendAt: &sendAt,
	})
	if err != nil || sched.Status != "scheduled" {
		t.Fatalf("scheduled send = %+v, %v", sched, err)
	}

	got, err := e.app.Queries.GetMessage.Handle(e.as(tn, ports.ActionGetMessage, "viewer", tn.eu), app.GetMessageInput{MessageID: out.MessageID})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"messageId":"` + out.MessageID + `","channelId":"` + sms + `","scopeId":"` + tn.eu + `","direction":"outbound",` +
		`"to":"+15551230000","from":"+15550001111","content":{"text":"Your code is 1234"},"status":"queued","statusReason":null,` +
		`"attempts":0,"metadata":{"orderId":"42"},"sendAt":null,"createdAt":"2025-03-04T05:06:09.891Z","updatedAt":"2025-03-04T05:06:09.891Z"}`
	if js(got) != want {
		t.Fatalf("get-message = %s\nwant          %s", js(got), want)
	}
	got, _ = e.app.Queries.GetMessage.Handle(e.admin(tn, ports.ActionGetMessage), app.GetMessageInput{MessageID: sched.MessageID})
	if got.Status != "scheduled" || got.SendAt == nil || *got.SendAt != "2025-03-04T05:06:10.500Z" || got.Content.HTML != "<p>Hi</p>" || js(got.Metadata) != "{}" {
		t.Fatalf("scheduled message = %s", js(got))
	}

	// Committed with them: a dispatch each (at sendAt for the scheduled
	// one), and message.queued for the queued one only.
	after, _ := e.store.PendingOutbox(ctx, t0.Add(48*time.Hour), 100)
	var dispatch []string
	var published []string
	for _, it := range after[len(before):] {
		switch it.Type {
		case app.WorkDispatch:
			var p app.DispatchPayload
			_ = json.Unmarshal(it.Payload, &p)
			dispatch = append(dispatch, p.MessageID+"@"+it.DueAt.Format(time.RFC3339Nano))
		case work.PublishType:
			var ev work.IntegrationEvent
			_ = json.Unmarshal(it.Payload, &ev)
			published = append(published, ev.Type)
		}
	}
	slices.Sort(dispatch)
	wantDispatch := []string{out.MessageID + "@2025-03-04T05:06:09.891234567Z", sched.MessageID + "@2025-03-04T05:06:10.5Z"}
	slices.Sort(wantDispatch)
	if !reflect.DeepEqual(dispatch, wantDispatch) || !reflect.DeepEqual(published, []string{"message.queued"}) {
		t.Fatalf("dispatch %v (want %v), published %v", dispatch, wantDispatch, published)
	}

	// Refusals: every field at once; unknown, malformed and foreign channels; roles.
	_, err = e.app.Commands.SendMessage.Handle(e.admin(tn, ports.ActionSendMessage), app.SendMessageInput{
		ChannelID: sms, To: "0155", Content: domain.Content{Subject: "x"}, SendAt: new(string), Metadata: map[string]string{"k": strings.Repeat("v", 501)},
	})
	wantFields := []string{"to=errors.validation.e164", "content.text=errors.validation.required", "content.subject=errors.validation.invalid",
		"metadata.k=errors.validation.too_long", "sendAt=errors.validation.datetime"}
	if got := fieldCodes(err); !reflect.DeepEqual(got, wantFields) {
		t.Fatalf("fields = %v\nwant     %v", got, wantFields)
	}
	other := e.onboard(t, "Globex")
	foreign := e.channel(t, other, other.RootScopeID, domain.ChannelSMS)
	for _, ch := range []string{foreign, e.ids.New(ids.Channel), "chn_nope", sched.MessageID} {
		_, err := e.app.Commands.SendMessage.Handle(e.admin(tn, ports.ActionSendMessage), app.SendMessageInput{ChannelID: ch, To: "+15551230000", Content: domain.Content{Text: "x"}})
		wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
	}
	for _, ctx := range []context.Context{
		e.as(tn, ports.ActionSendMessage, "viewer", tn.RootScopeID),
		e.as(tn, ports.ActionSendMessage, "sender", tn.us),
		e.as(tn, ports.ActionSendMessage, "sender", tn.de),
	} {
		_, err := e.app.Commands.SendMessage.Handle(ctx, app.SendMessageInput{ChannelID: sms, To: "+15551230000", Content: domain.Content{Text: "x"}})
		wantErr(t, err, errs.KindForbidden, errs.CodeForbidden)
	}
}

// The hot path reads one row and writes one commit: no stream replay.
func TestSendMessageIsOneReadAndOneCommit(t *testing.T) {
	e := newEnv(t)
	tn := e.onboard(t, "Acme")
	sms := e.channel(t, tn, tn.eu, domain.ChannelSMS)
	runner := &uow.Runner{Store: e.store}
	e.store.reset()
	err := runner.Run(e.as(tn, ports.ActionSendMessage, "sender", tn.eu), tn.TenantID, func(ctx context.Context) error {
		_, err := e.app.Commands.SendMessage.Handle(ctx, app.SendMessageInput{ChannelID: sms, To: "+15551230000", Content: domain.Content{Text: "x"}})
		return err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.store.getRecord != 1 || e.store.readStream != 0 || e.store.list != 0 || e.store.commit != 1 {
		t.Fatalf("send-message made %d record reads, %d stream reads, %d list reads, %d commits; want 1, 0, 0, 1",
			e.store.getRecord, e.store.readStream, e.store.list, e.store.commit)
	}
}

func TestCancelMessage(t *testing.T) {
	e := newEnv(t)
	tn := e.onboard(t, "Acme")
	sms := e.channel(t, tn, tn.eu, domain.ChannelSMS)
	sender := func() context.Context { return e.as(tn, ports.ActionCancelMessage, "sender", tn.eu) }
	queued := e.send(t, e.as(tn, ports.ActionSendMessage, "sender", tn.eu), sms, "+15551230000")
	e.clock.Advance(time.Second)

	out, err := e.app.Commands.CancelMessage.Handle(sender(), app.CancelMessageInput{MessageID: queued})
	if err != nil || out != (app.CancelMessageOutput{MessageID: queued, Status: "canceled"}) {
		t.Fatalf("cancel = %+v, %v", out, err)
	}
	got, _ := e.app.Queries.GetMessage.Handle(e.admin(tn, ports.ActionGetMessage), app.GetMessageInput{MessageID: queued})
	if got.Status != "canceled" || got.UpdatedAt != "2025-03-04T05:06:08.891Z" || got.CreatedAt != "2025-03-04T05:06:07.891Z" {
		t.Fatalf("canceled message = %s", js(got))
	}
	// Canceled already: 409 with the status.
	_, err = e.app.Commands.CancelMessage.Handle(sender(), app.CancelMessageInput{MessageID: queued})
	if wantErr(t, err, errs.KindConflict, domain.CodeNotCancelable).Params["status"] != "canceled" || !errors.Is(err, domain.ErrNotCancelable) {
		t.Fatalf("second cancel: %v", err)
	}

	// A scheduled message can be canceled; a sent one cannot.
	at := "2025-03-05T00:00:00Z"
	sched, err := e.app.Commands.SendMessage.Handle(e.admin(tn, ports.ActionSendMessage), app.SendMessageInput{ChannelID: sms, To: "+15551230000", Content: domain.Content{Text: "x"}, SendAt: &at})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Commands.CancelMessage.Handle(sender(), app.CancelMessageInput{MessageID: sched.MessageID}); err != nil {
		t.Fatalf("cancel scheduled: %v", err)
	}
	sent := e.send(t, e.admin(tn, ports.ActionSendMessage), sms, "+15551230000")
	repo := adapters.NewRepository(e.store, e.ids, e.clock)
	m, _ := repo.Message(context.Background(), tn.TenantID, sent)
	ev, _ := m.Sent("sbx_1", 1)
	if err := repo.SaveMessage(context.Background(), tn.TenantID, m, []domain.Event{ev}); err != nil {
		t.Fatal(err)
	}
	_, err = e.app.Commands.CancelMessage.Handle(sender(), app.CancelMessageInput{MessageID: sent})
	if wantErr(t, err, errs.KindConflict, domain.CodeNotCancelable).Params["status"] != "sent" {
		t.Fatalf("cancel of a sent message: %v", err)
	}

	// Unknown, malformed, foreign: 404. Roles: viewer and other scopes: 403.
	other := e.onboard(t, "Globex")
	foreign := e.send(t, e.admin(other, ports.ActionSendMessage), e.channel(t, other, other.RootScopeID, domain.ChannelSMS), "+15551230000")
	for _, id := range []string{foreign, e.ids.New(ids.Message), "msg_x", sms} {
		_, err := e.app.Commands.CancelMessage.Handle(sender(), app.CancelMessageInput{MessageID: id})
		wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
	}
	fresh := e.send(t, e.admin(tn, ports.ActionSendMessage), sms, "+15551230000")
	for _, ctx := range []context.Context{e.as(tn, ports.ActionCancelMessage, "viewer", tn.eu), e.as(tn, ports.ActionCancelMessage, "sender", tn.us)} {
		_, err := e.app.Commands.CancelMessage.Handle(ctx, app.CancelMessageInput{MessageID: fresh})
		wantErr(t, err, errs.KindForbidden, errs.CodeForbidden)
	}

	// The cancellation published message.canceled with the canceled message.
	items, _ := e.store.PendingOutbox(context.Background(), t0.Add(48*time.Hour), 500)
	canceled := 0
	for _, it := range items {
		var ev work.IntegrationEvent
		if it.Type != work.PublishType || json.Unmarshal(it.Payload, &ev) != nil || ev.Type != "message.canceled" {
			continue
		}
		var d app.MessageEventDetail
		if err := json.Unmarshal(ev.Detail, &d); err != nil || d.Data.Status != "canceled" || d.TenantID != tn.TenantID || len(d.ScopePath) != 2 {
			t.Fatalf("message.canceled detail = %s, %v", ev.Detail, err)
		}
		canceled++
	}
	if canceled != 2 {
		t.Fatalf("%d message.canceled events, want 2", canceled)
	}
}

func TestGetMessageHistory(t *testing.T) {
	e := newEnv(t)
	tn := e.onboard(t, "Acme")
	sms := e.channel(t, tn, tn.eu, domain.ChannelSMS)
	sendCtx := e.as(tn, ports.ActionSendMessage, "sender", tn.eu)
	id := e.send(t, sendCtx, sms, "+15551230000")
	e.clock.Advance(1500 * time.Millisecond)
	cancelCtx := e.as(tn, ports.ActionCancelMessage, "sender", tn.eu)
	if _, err := e.app.Commands.CancelMessage.Handle(cancelCtx, app.CancelMessageInput{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	h, err := e.app.Queries.GetMessageHistory.Handle(e.as(tn, ports.ActionGetMessageHistory, "viewer", tn.RootScopeID), app.GetMessageHistoryInput{MessageID: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Events) != 2 {
		t.Fatalf("history = %s", js(h))
	}
	first, second := h.Events[0], h.Events[1]
	if first.Type != domain.TypeMessageAccepted || first.Version != 1 || first.InvocationID != invocation.From(sendCtx).InvocationID ||
		first.Principal != "service_account:sva_test" || first.OccurredAt != "2025-03-04T05:06:07.891Z" || !ids.Valid(ids.Event, first.EventID) {
		t.Fatalf("first = %+v", first)
	}
	if second.Type != domain.TypeMessageCanceled || second.Version != 2 || second.InvocationID != invocation.From(cancelCtx).InvocationID ||
		second.OccurredAt != "2025-03-04T05:06:09.391Z" || string(second.Data) != `{"messageId":"`+id+`"}` {
		t.Fatalf("second = %+v", second)
	}
	var data domain.MessageAccepted
	if err := json.Unmarshal(first.Data, &data); err != nil || data.MessageID != id || data.To != "+15551230000" {
		t.Fatalf("first data = %s", first.Data)
	}
	wantErr(t, func() error {
		_, err := e.app.Queries.GetMessageHistory.Handle(e.admin(tn, ports.ActionGetMessageHistory), app.GetMessageHistoryInput{MessageID: e.ids.New(ids.Message)})
		return err
	}(), errs.KindNotFound, errs.CodeNotFound)
	_, err = e.app.Queries.GetMessageHistory.Handle(e.as(tn, ports.ActionGetMessageHistory, "viewer", tn.us), app.GetMessageHistoryInput{MessageID: id})
	wantErr(t, err, errs.KindForbidden, errs.CodeForbidden)
}

func TestListMessagesFiltersAndAuthorization(t *testing.T) {
	e := newEnv(t)
	tn := e.onboard(t, "Acme")
	chEU := e.channel(t, tn, tn.eu, domain.ChannelSMS)
	chUS := e.channel(t, tn, tn.us, domain.ChannelSMS)
	chDE := e.channel(t, tn, tn.de, domain.ChannelSMS)
	admin := e.admin(tn, ports.ActionSendMessage)
	eu1, us1, eu2, de1, us2, eu3 := e.send(t, admin, chEU, "+15551230001"), e.send(t, admin, chUS, "+15551230002"),
		e.send(t, admin, chEU, "+15551230003"), e.send(t, admin, chDE, "+15551230004"), e.send(t, admin, chUS, "+15551230005"),
		e.send(t, admin, chEU, "+15551230006")
	if _, err := e.app.Commands.CancelMessage.Handle(e.admin(tn, ports.ActionCancelMessage), app.CancelMessageInput{MessageID: eu2}); err != nil {
		t.Fatal(err)
	}
	list := func(ctx context.Context, in app.ListMessagesInput) ([]string, error) {
		out, err := e.app.Queries.ListMessages.Handle(ctx, in)
		var got []string
		for _, it := range out.Items {
			got = append(got, it.MessageID)
		}
		return got, err
	}
	root := func() context.Context { return e.admin(tn, ports.ActionListMessages) }
	cases := []struct {
		in   app.ListMessagesInput
		want []string
	}{
		{app.ListMessagesInput{}, []string{eu3, us2, de1, eu2, us1, eu1}},
		{app.ListMessagesInput{ScopeID: tn.eu}, []string{eu3, eu2, eu1}}, // the scope itself, not de below it
		{app.ListMessagesInput{ScopeID: tn.de}, []string{de1}},
		{app.ListMessagesInput{ChannelID: chUS}, []string{us2, us1}},
		{app.ListMessagesInput{Status: "canceled"}, []string{eu2}},
		{app.ListMessagesInput{Status: "queued", ScopeID: tn.eu}, []string{eu3, eu1}},
		{app.ListMessagesInput{Status: "queued", ChannelID: chEU}, []string{eu3, eu1}},
		{app.ListMessagesInput{ScopeID: tn.eu, ChannelID: chEU}, []string{eu3, eu2, eu1}},
		{app.ListMessagesInput{ScopeID: tn.us, ChannelID: chEU}, nil},
		{app.ListMessagesInput{Status: "delivered"}, nil},
	}
	for _, tc := range cases {
		got, err := list(root(), tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if out, _ := e.app.Queries.ListMessages.Handle(root(), app.ListMessagesInput{Status: "delivered"}); js(out) != `{"items":[],"nextCursor":null}` {
		t.Fatalf("empty page = %s", js(out))
	}

	// Bad input.
	_, err := list(root(), app.ListMessagesInput{Status: "bogus"})
	if got := fieldCodes(wantErr(t, err, errs.KindInvalid, errs.CodeValidation)); !reflect.DeepEqual(got, []string{"status=errors.validation.one_of"}) {
		t.Fatalf("fields = %v", got)
	}
	for _, in := range []app.ListMessagesInput{{Limit: new(101)}, {Limit: new(-1)}, {Limit: new(0)}, {Cursor: "%%%"}} {
		_, err := list(root(), in)
		wantErr(t, err, errs.KindInvalid, errs.CodeValidation)
	}
	for _, in := range []app.ListMessagesInput{{ScopeID: "scp_nope"}, {ScopeID: e.ids.New(ids.Scope)}, {ChannelID: e.ids.New(ids.Channel)},
		{ChannelID: chEU, ScopeID: e.ids.New(ids.Scope)}} {
		_, err := list(root(), in)
		wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
	}

	// A sender of eu reads eu and below it, nothing else and not the whole
	// tenant: without a filter, the messages of eu and de merged (ADR 0009).
	eu := func() context.Context { return e.as(tn, ports.ActionListMessages, "sender", tn.eu) }
	if got, err := list(eu(), app.ListMessagesInput{}); err != nil || !reflect.DeepEqual(got, []string{eu3, de1, eu2, eu1}) {
		t.Fatalf("sender of eu lists %v, %v; want eu's and de's newest first", got, err)
	}
	for _, in := range []app.ListMessagesInput{{ScopeID: tn.us}, {ChannelID: chUS}, {ScopeID: tn.RootScopeID}} {
		_, err := list(eu(), in)
		wantErr(t, err, errs.KindForbidden, errs.CodeForbidden)
	}
	if got, err := list(eu(), app.ListMessagesInput{ScopeID: tn.de}); err != nil || !reflect.DeepEqual(got, []string{de1}) {
		t.Fatalf("sender of eu lists de: %v, %v", got, err)
	}
	if got, err := list(eu(), app.ListMessagesInput{ChannelID: chEU, Limit: new(2)}); err != nil || !reflect.DeepEqual(got, []string{eu3, eu2}) {
		t.Fatalf("sender of eu lists its channel: %v, %v", got, err)
	}
	if _, err := e.app.Queries.GetMessage.Handle(e.as(tn, ports.ActionGetMessage, "sender", tn.eu), app.GetMessageInput{MessageID: us1}); errs.KindOf(err) != errs.KindForbidden {
		t.Fatalf("sender of eu reads a us message: %v", err)
	}

	// Another tenant sees none of it.
	other := e.onboard(t, "Globex")
	if got, err := list(e.admin(other, ports.ActionListMessages), app.ListMessagesInput{}); err != nil || len(got) != 0 {
		t.Fatalf("other tenant: %v, %v", got, err)
	}
	_, err = list(e.admin(other, ports.ActionListMessages), app.ListMessagesInput{ChannelID: chEU})
	wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
	_, err = e.app.Queries.GetMessage.Handle(e.admin(other, ports.ActionGetMessage), app.GetMessageInput{MessageID: eu1})
	wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
}

func TestListChannels(t *testing.T) {
	e := newEnv(t)
	tn := e.onboard(t, "Acme")
	var all, inEU []string
	for i := range 5 {
		scope := tn.eu
		if i%2 == 1 {
			scope = tn.us
		}
		id := e.channel(t, tn, scope, domain.ChannelSMS)
		all = append([]string{id}, all...)
		if scope == tn.eu {
			inEU = append([]string{id}, inEU...)
		}
	}
	pages := func(ctx context.Context, scope string) []string {
		var got []string
		cursor := ""
		for range 10 {
			out, err := e.app.Queries.ListChannels.Handle(ctx, app.ListChannelsInput{ScopeID: scope, Limit: new(2), Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Items) > 2 {
				t.Fatalf("page of %d", len(out.Items))
			}
			for _, it := range out.Items {
				got = append(got, it.ChannelID)
			}
			if out.NextCursor == nil {
				return got
			}
			cursor = *out.NextCursor
		}
		t.Fatal("too many pages")
		return nil
	}
	if got := pages(e.as(tn, ports.ActionListChannels, "viewer", tn.RootScopeID), ""); !reflect.DeepEqual(got, all) {
		t.Fatalf("all = %v\nwant  %v", got, all)
	}
	if got := pages(e.as(tn, ports.ActionListChannels, "sender", tn.eu), tn.eu); !reflect.DeepEqual(got, inEU) {
		t.Fatalf("eu = %v\nwant %v", got, inEU)
	}
	// Without a scope, a sender of EU sees the channels it may see (EU's),
	// not a 403 for the whole tenant; a page may hold fewer than the limit.
	if got := pages(e.as(tn, ports.ActionListChannels, "sender", tn.eu), ""); !reflect.DeepEqual(got, inEU) {
		t.Fatalf("sender of eu without a scope = %v\nwant %v", got, inEU)
	}
	_, err := e.app.Queries.ListChannels.Handle(e.admin(tn, ports.ActionListChannels), app.ListChannelsInput{ScopeID: "scp_nope"})
	wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
	other := e.onboard(t, "Globex")
	out, err := e.app.Queries.ListChannels.Handle(e.admin(other, ports.ActionListChannels), app.ListChannelsInput{})
	if err != nil || len(out.Items) != 0 {
		t.Fatalf("other tenant: %s, %v", js(out), err)
	}
	_, err = e.app.Queries.ListChannels.Handle(e.admin(other, ports.ActionListChannels), app.ListChannelsInput{ScopeID: tn.eu})
	wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
	_, err = e.app.Queries.GetChannel.Handle(e.admin(other, ports.ActionGetChannel), app.GetChannelInput{ChannelID: all[0]})
	wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
}

func TestRebuildReadModels(t *testing.T) {
	e := newEnv(t)
	tn := e.onboard(t, "Acme")
	ctx := context.Background()
	ch := e.channel(t, tn, tn.eu, domain.ChannelSMS)
	m1 := e.send(t, e.admin(tn, ports.ActionSendMessage), ch, "+15551230000")
	m2 := e.send(t, e.admin(tn, ports.ActionSendMessage), ch, "+15551230001")
	if _, err := e.app.Commands.CancelMessage.Handle(e.admin(tn, ports.ActionCancelMessage), app.CancelMessageInput{MessageID: m2}); err != nil {
		t.Fatal(err)
	}
	rows := map[string][]byte{}
	for _, k := range [][2]string{{adapters.CollectionChannels, ch}, {adapters.CollectionMessages, m1}, {adapters.CollectionMessages, m2}} {
		r, err := e.store.GetRecord(ctx, tn.TenantID, k[0], k[1])
		if err != nil {
			t.Fatal(err)
		}
		rows[k[1]] = r.Data
	}
	// Lose the rows (and so their list entries).
	err := e.store.Commit(ctx, &eventstore.Commit{TenantID: tn.TenantID, Records: []eventstore.Record{
		{Collection: adapters.CollectionChannels, Key: ch, Delete: true},
		{Collection: adapters.CollectionMessages, Key: m1, Delete: true},
		{Collection: adapters.CollectionMessages, Key: m2, Delete: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.app.Queries.GetMessage.Handle(e.admin(tn, ports.ActionGetMessage), app.GetMessageInput{MessageID: m1})
	wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)

	other := e.onboard(t, "Globex")
	foreign := e.send(t, e.admin(other, ports.ActionSendMessage), e.channel(t, other, other.RootScopeID, domain.ChannelSMS), "+15551230000")
	out, err := e.app.Commands.RebuildReadModels.Handle(e.admin(tn, ports.ActionRebuildReadModels), app.RebuildReadModelsInput{
		ChannelIDs: []string{ch, "chn_nope"}, MessageIDs: []string{m1, m2, m1, foreign, e.ids.New(ids.Message)},
	})
	if err != nil || out.Rebuilt != 3 {
		t.Fatalf("rebuild = %+v, %v", out, err)
	}
	for id, want := range rows {
		coll := adapters.CollectionMessages
		if id == ch {
			coll = adapters.CollectionChannels
		}
		r, err := e.store.GetRecord(ctx, tn.TenantID, coll, id)
		if err != nil || !bytes.Equal(r.Data, want) {
			t.Fatalf("%s after rebuild = %s, %v\nwant %s", id, r.Data, err, want)
		}
	}
	page, err := e.app.Queries.ListMessages.Handle(e.admin(tn, ports.ActionListMessages), app.ListMessagesInput{ChannelID: ch, Status: "canceled"})
	if err != nil || len(page.Items) != 1 || page.Items[0].MessageID != m2 {
		t.Fatalf("lists after rebuild: %s, %v", js(page), err)
	}
	// Idempotent; the other tenant's message was not touched.
	again, err := e.app.Commands.RebuildReadModels.Handle(e.admin(tn, ports.ActionRebuildReadModels), app.RebuildReadModelsInput{MessageIDs: []string{m1}})
	if err != nil || again.Rebuilt != 1 {
		t.Fatalf("again = %+v, %v", again, err)
	}
	if _, err := e.store.GetRecord(ctx, tn.TenantID, adapters.CollectionMessages, foreign); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("a row of another tenant's message was written in this tenant: %v", err)
	}

	// 1..100 ids; admin of the tenant root only.
	many := make([]string, 101)
	for i := range many {
		many[i] = e.ids.New(ids.Message)
	}
	for _, in := range []app.RebuildReadModelsInput{{}, {MessageIDs: many}, {MessageIDs: many[:60], ChannelIDs: many[:41]}} {
		_, err := e.app.Commands.RebuildReadModels.Handle(e.admin(tn, ports.ActionRebuildReadModels), in)
		wantErr(t, err, errs.KindInvalid, errs.CodeValidation)
	}
	if out, err := e.app.Commands.RebuildReadModels.Handle(e.admin(tn, ports.ActionRebuildReadModels), app.RebuildReadModelsInput{MessageIDs: many[:100]}); err != nil || out.Rebuilt != 0 {
		t.Fatalf("100 unknown ids: %+v, %v", out, err)
	}
	_, err = e.app.Commands.RebuildReadModels.Handle(e.as(tn, ports.ActionRebuildReadModels, "admin", tn.eu), app.RebuildReadModelsInput{MessageIDs: []string{m1}})
	wantErr(t, err, errs.KindForbidden, errs.CodeForbidden)
	// The job's entry point, acting as the system.
	if n, err := app.RebuildReadModels(ctx, adapters.NewRepository(e.store, e.ids, e.clock), tn.TenantID, []string{ch}, []string{m1, m2}); err != nil || n != 3 {
		t.Fatalf("RebuildReadModels = %d, %v", n, err)
	}
}

// Through the real rpc edge: authentication, validation, status codes,
// problem bodies and the unit of work.
func TestThroughTheEdge(t *testing.T) {
	e := newEnv(t)
	call := func(path, key, body string) (int, map[string]any, string) {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		e.server.ServeHTTP(w, req)
		var m map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m, w.Body.String()
	}
	tn := e.onboard(t, "Acme")
	key := tn.APIKey
	st, body, raw := call("/commands/create-channel", key, `{"scopeId":"`+tn.eu+`","name":"SMS","type":"sms","provider":"sandbox","from":"+15550001111"}`)
	if st != 200 || !strings.HasPrefix(body["inboundSecret"].(string), "whsec_") {
		t.Fatalf("create-channel: %d %s", st, raw)
	}
	ch := body["channelId"].(string)
	st, body, raw = call("/commands/send-message", key, `{"channelId":"`+ch+`","to":"+15551230000","content":{"text":"hi"},"metadata":{"a":"b"}}`)
	if st != 202 || body["status"] != "queued" {
		t.Fatalf("send-message: %d %s", st, raw)
	}
	msg := body["messageId"].(string)
	st, body, raw = call("/queries/get-message", key, `{"messageId":"`+msg+`"}`)
	if st != 200 || body["status"] != "queued" || body["statusReason"] != nil || body["sendAt"] != nil {
		t.Fatalf("get-message: %d %s", st, raw)
	}
	st, _, raw = call("/commands/send-message", key, `{"channelId":"`+ch+`","to":"nope","content":{"text":""},"sendAt":"tomorrow"}`)
	if st != 400 || !strings.Contains(raw, `{"field":"to","code":"errors.validation.e164"`) ||
		!strings.Contains(raw, `{"field":"content.text","code":"errors.validation.required"`) ||
		!strings.Contains(raw, `{"field":"sendAt","code":"errors.validation.datetime"`) {
		t.Fatalf("invalid send: %d %s", st, raw)
	}
	for _, bad := range []string{
		`{"channelId":"` + ch + `","to":"+15551230000","content":{"text":"hi","extra":1}}`,
		`{"channelId":"` + ch + `","to":"+15551230000","content":{"text":5}}`,
		`{"channelId":"` + ch + `","to":"+15551230000","content":"hi"}`,
		`{"channelId":"` + ch + `","to":"+15551230000","content":{"text":"hi"},"metadata":{"a":1}}`,
		`{"channelId":"` + ch + `","to":"+15551230000","content":{"text":"hi"},"sendAt":12}`,
		`{"to":"+15551230000","content":{"text":"hi"}}`,
		`{"channelId":"` + strings.Repeat("x", 65) + `"}`,
		`[]`,
	} {
		if st, _, raw := call("/commands/send-message", key, bad); st != 400 {
			t.Errorf("%s: %d %s", bad, st, raw)
		}
	}
	for _, path := range []string{"/queries/get-message", "/commands/cancel-message", "/queries/get-message-history"} {
		if st, _, raw := call(path, key, `{"messageId":"msg_nope"}`); st != 404 {
			t.Errorf("%s: %d %s", path, st, raw)
		}
	}
	// 64 KiB of content that JSON escapes (quotes) or could escape (HTML)
	// fits every item of the commit; a control character is refused.
	st, body, raw = call("/commands/create-channel", key, `{"scopeId":"`+tn.us+`","name":"Mail","type":"email","provider":"sandbox","from":"noreply@example.com"}`)
	if st != 200 {
		t.Fatalf("create email channel: %d %s", st, raw)
	}
	mail := body["channelId"].(string)
	for _, html := range []string{strings.Repeat(`<>&`, 64*1024/3), strings.Repeat(`\"`, 64*1024-1)} {
		st, body, raw := call("/commands/send-message", key, `{"channelId":"`+mail+`","to":"ann@example.com","content":{"subject":"s","html":"`+html+`"}}`)
		if st != 202 {
			t.Fatalf("64 KiB html: %d %.300s", st, raw)
		}
		if st, got, _ := call("/queries/get-message", key, `{"messageId":"`+body["messageId"].(string)+`"}`); st != 200 || len(got["content"].(map[string]any)["html"].(string)) < 64*1024-3 {
			t.Fatalf("64 KiB html read back: %d", st)
		}
	}
	if st, _, raw := call("/commands/send-message", key, `{"channelId":"`+mail+`","to":"ann@example.com","content":{"subject":"s","text":"a\u0000b"}}`); st != 400 ||
		!strings.Contains(raw, `"field":"content.text","code":"errors.validation.invalid"`) {
		t.Fatalf("control character: %d %s", st, raw)
	}
	if st, _, raw := call("/queries/get-channel", key, `{"channelId":"`+msg+`"}`); st != 404 {
		t.Errorf("get-channel of a message id: %d %s", st, raw)
	}
	if st, _, raw := call("/queries/list-messages", key, `{"status":"nope"}`); st != 400 || !strings.Contains(raw, `"field":"status"`) {
		t.Errorf("list-messages bogus status: %d %s", st, raw)
	}
	if st, _, raw := call("/commands/cancel-message", key, `{"messageId":"`+msg+`"}`); st != 200 || raw != `{"messageId":"`+msg+`","status":"canceled"}` {
		t.Fatalf("cancel: %d %s", st, raw)
	}
	if st, body, raw := call("/commands/cancel-message", key, `{"messageId":"`+msg+`"}`); st != 409 || body["code"] != domain.CodeNotCancelable {
		t.Fatalf("cancel again: %d %s", st, raw)
	}
	if st, body, raw := call("/commands/rebuild-read-models", key, `{"messageIds":["`+msg+`"]}`); st != 200 || body["rebuilt"] != 1.0 {
		t.Fatalf("rebuild: %d %s", st, raw)
	}
	if st, _, _ := call("/commands/send-message", "", `{}`); st != 401 {
		t.Fatalf("anonymous send: %d", st)
	}
	if st, _, _ := call("/commands/send-message", operatorKey, `{"channelId":"`+ch+`"}`); st != 403 {
		t.Fatalf("operator send: %d", st)
	}
	// Provider webhooks reach the route (an unknown channel is a 404).
	if st, _, raw := call("/webhooks/sandbox/"+e.ids.New(ids.Channel), "", `{}`); st != 404 {
		t.Fatalf("webhook of an unknown channel: %d %s", st, raw)
	}
}

func TestWorkTypesAreRegistered(t *testing.T) {
	e := newEnv(t)
	if got := e.work.Types(); !reflect.DeepEqual(got, []string{app.WorkDispatch, app.WorkProviderWebhook}) {
		t.Fatalf("work types = %v", got)
	}
	if _, ok := e.mod.Routes()[ports.WebhookPattern]; !ok || len(e.mod.Routes()) != 1 {
		t.Fatalf("routes = %v", e.mod.Routes())
	}
}

// BenchmarkSendMessage runs send-message as the edge does (a unit of work
// per call, committed by the runner) from many parallel callers on the
// embedded store: one row read and one commit per message.
func BenchmarkSendMessage(b *testing.B) {
	e := newEnv(b)
	tn := e.onboard(b, "Bench")
	sms := e.channel(b, tn, tn.eu, domain.ChannelSMS)
	runner := &uow.Runner{Store: e.store}
	in := app.SendMessageInput{ChannelID: sms, To: "+15551230000", Content: domain.Content{Text: "hello"}}
	b.SetParallelism(32) // many concurrent callers, as an HTTP edge has
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx := e.as(tn, ports.ActionSendMessage, "sender", tn.eu)
			err := runner.Run(ctx, tn.TenantID, func(ctx context.Context) error {
				_, err := e.app.Commands.SendMessage.Handle(ctx, in)
				return err
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
