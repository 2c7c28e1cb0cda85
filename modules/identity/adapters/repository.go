package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/identity/app"
	"github.com/switchboard-dev/switchboard/modules/identity/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// Store layout. Persisted.
const (
	// PlatformNamespace is the store namespace (tenant id) of platform-wide
	// entities: not a valid tnt_ id, so no tenant can collide.
	PlatformNamespace = "_platform"
	// KeySetStream is the stream of the key set in PlatformNamespace.
	KeySetStream = "signing-keys"
	// KeySetCollection holds the key set's snapshot row (key KeySetRow): the
	// state as of a stream version, so loading never replays the stream.
	KeySetCollection  = "identity-signing-keys"
	KeySetRow         = "set"
	tokenStreamPrefix = "access-token-"
	schemaVersion     = 1
)

// TokenStream is the stream of one issued token (one event; never contended).
func TokenStream(tokenID string) string { return tokenStreamPrefix + tokenID }

// Repository implements app.Repository.
type Repository struct {
	store eventstore.Store
	ids   ids.Generator
	clock clock.Clock
}

var _ app.Repository = (*Repository)(nil)

// NewRepository returns a repository over store.
func NewRepository(store eventstore.Store, gen ids.Generator, clk clock.Clock) *Repository {
	return &Repository{store: store, ids: gen, clock: clk}
}

// KeySet implements app.Repository: the snapshot row, then the events the
// stream has beyond it (none today: both are written in one commit; a later
// writer may append without rewriting the row). Strongly consistent: a
// rotation must see the newest set.
func (r *Repository) KeySet(ctx context.Context) (*domain.KeySet, error) {
	set := &domain.KeySet{}
	rec, err := r.store.GetRecord(ctx, PlatformNamespace, KeySetCollection, KeySetRow)
	switch {
	case errors.Is(err, eventstore.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("read key set: %w", err)
	default:
		if err := json.Unmarshal(rec.Data, set); err != nil {
			return nil, fmt.Errorf("decode key set: %w", err)
		}
	}
	evs, err := r.store.ReadStream(ctx, PlatformNamespace, KeySetStream, set.Version+1, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", KeySetStream, err)
	}
	for _, e := range evs {
		ev, err := decode(e)
		if err != nil {
			return nil, err
		}
		if err := set.Apply(ev); err != nil {
			return nil, err
		}
		set.Version = e.Version
	}
	return set, nil
}

// SaveKeySet implements app.Repository: the events on top of base and the
// new snapshot, in one commit of the platform namespace (never the caller's
// unit of work: the key set is not a tenant's). eventstore.ErrConflict when
// another writer moved the set first.
func (r *Repository) SaveKeySet(ctx context.Context, base int64, set *domain.KeySet, evs []domain.Event) error {
	if len(evs) == 0 {
		return nil
	}
	encoded, err := r.events(ctx, evs)
	if err != nil {
		return err
	}
	snap := *set
	snap.Version = base + int64(len(evs))
	data, err := eventstore.MarshalJSON(snap)
	if err != nil {
		return fmt.Errorf("encode key set: %w", err)
	}
	c := &eventstore.Commit{
		TenantID: PlatformNamespace,
		Appends:  []eventstore.StreamAppend{{StreamID: KeySetStream, ExpectedVersion: base, Events: encoded}},
		Records:  []eventstore.Record{{Collection: KeySetCollection, Key: KeySetRow, Data: data}},
	}
	if err := r.store.Commit(ctx, c); err != nil {
		return fmt.Errorf("save key set: %w", err)
	}
	set.Version = snap.Version
	return nil
}

// SaveTokenIssued implements app.Repository: staged in the invocation's
// unit of work (the tenant's), committed with its idempotency record.
func (r *Repository) SaveTokenIssued(ctx context.Context, tenantID string, ev domain.AccessTokenIssued) error {
	encoded, err := r.events(ctx, []domain.Event{ev})
	if err != nil {
		return err
	}
	return eventstore.Write(ctx, r.store, &eventstore.Commit{
		TenantID: tenantID,
		Appends:  []eventstore.StreamAppend{{StreamID: TokenStream(ev.TokenID), Events: encoded}},
	})
}

// codec encodes and decodes the module's events (every type, by a sample).
var codec = eventstore.NewCodec[domain.Event](schemaVersion,
	domain.SigningKeyCreated{}, domain.SigningKeyRetired{}, domain.AccessTokenIssued{})

// events encodes domain events with the invocation's metadata.
func (r *Repository) events(ctx context.Context, evs []domain.Event) ([]eventstore.Event, error) {
	now := r.clock.Now()
	out := make([]eventstore.Event, 0, len(evs))
	for _, ev := range evs {
		e, err := codec.Encode(ctx, r.ids, ev, now)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// decode turns a stored event back into a domain event.
func decode(e eventstore.Event) (domain.Event, error) { return codec.Decode(e) }
