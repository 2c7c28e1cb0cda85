package rpc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
)

// memKeys resolves one API key from memory (no store I/O).
type memKeys struct{ rec auth.APIKeyRecord }

func (m memKeys) ResolveAPIKey(_ context.Context, id string) (auth.APIKeyRecord, error) {
	if id != m.rec.KeyID {
		return auth.APIKeyRecord{}, auth.ErrUnauthenticated
	}
	return m.rec, nil
}

// nopStore answers without I/O: the benchmark measures the edge, not the store.
type nopStore struct{}

func (nopStore) Commit(context.Context, *eventstore.Commit) error { return nil }
func (nopStore) GetIdempotency(context.Context, string, string) (eventstore.Idempotency, error) {
	return eventstore.Idempotency{}, eventstore.ErrNotFound
}

type sendIn struct {
	ChannelID string            `json:"channelId" validate:"required,prefixed=chn"`
	To        string            `json:"to" validate:"required,e164"`
	Text      string            `json:"text" validate:"required,min=1,max=1600"`
	Metadata  map[string]string `json:"metadata" validate:"max=20"`
}

// BenchmarkRequestPath: a command through the whole edge in-process — routing,
// invocation context, API key authentication (hash compare), authorization,
// idempotency check, strict decoding, validation, unit of work, response —
// with store I/O excluded. Budget: 50 µs per call.
func BenchmarkRequestPath(b *testing.B) {
	gen := ids.NewULIDs()
	keyID, secret := gen.New(ids.APIKey), auth.NewSecret()
	tenant, root := gen.New(ids.Tenant), gen.New(ids.Scope)
	keys := memKeys{auth.APIKeyRecord{KeyID: keyID, TenantID: tenant, ServiceAccountID: gen.New(ids.ServiceAccount),
		SecretHash: auth.HashSecret(secret), Roles: []invocation.RoleBinding{{Role: "admin", ScopeID: root}}}}
	srv := rpc.NewServer(rpc.Config{Auth: &auth.Authenticator{Keys: keys}, Store: nopStore{}})
	srv.Register(rpc.Command("send-message", "messaging:send-message", func(ctx context.Context, in sendIn) (map[string]string, error) {
		if err := authz.Require(ctx, authz.Resource{Type: "channel", ID: in.ChannelID, ScopePath: []string{root}}); err != nil {
			return nil, err
		}
		data := []byte(`{"to":"` + in.To + `"}`)
		err := eventstore.Write(ctx, nopStore{}, &eventstore.Commit{TenantID: invocation.From(ctx).TenantID(),
			Appends: []eventstore.StreamAppend{{StreamID: "message", Events: []eventstore.Event{{ID: gen.New(ids.Event), Type: "bench.sent", OccurredAt: time.Now(), Data: data}}}}})
		return map[string]string{"messageId": gen.New(ids.Message), "status": "queued"}, err
	}, rpc.WithStatus(http.StatusAccepted)))
	body := `{"channelId":"` + gen.New(ids.Channel) + `","to":"+4915112345678","text":"Your code is 123456","metadata":{"order":"42"}}`
	cred := "Bearer " + auth.FormatAPIKey(keyID, secret)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("POST", "/commands/send-message", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", cred)
		req.Header.Set("Idempotency-Key", "bench-key")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
