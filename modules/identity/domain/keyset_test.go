package domain_test

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/identity/domain"
)

func key(id string, at time.Time) *domain.SigningKey {
	return &domain.SigningKey{KeyID: id, PublicKey: make([]byte, 32), SealedPrivateKey: []byte("sealed"), CreatedAt: at}
}

func ids(s *domain.KeySet) []string {
	var out []string
	for _, k := range s.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// A rotation publishes the new key at once, signs with it after
// PublishLead, and keeps the previous key published until every token it
// signed has expired.
func TestRotationKeepsThePreviousKeyUntilItsTokensExpire(t *testing.T) {
	period := 24 * time.Hour
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &domain.KeySet{}
	if !s.NeedsKey(t0, period) {
		t.Fatal("an empty set needs a key")
	}
	if _, err := s.Rotate(t0, key("k1", t0)); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.Signing(t0); k.KeyID != "k1" {
		t.Fatal("the first key does not sign at once")
	}
	if s.NeedsKey(t0.Add(period-time.Second), period) {
		t.Fatal("a key is due before the period")
	}
	t1 := t0.Add(period)
	if !s.NeedsKey(t1, period) {
		t.Fatal("no key due after the period")
	}
	evs, err := s.Rotate(t1, key("k2", t1))
	if err != nil || len(evs) != 1 {
		t.Fatalf("rotate: %v %v", evs, err)
	}
	if got := ids(s); !slices.Equal(got, []string{"k1", "k2"}) {
		t.Fatalf("published %v", got)
	}
	if k, _ := s.Signing(t1.Add(domain.PublishLead - time.Second)); k.KeyID != "k1" {
		t.Fatal("the new key signs before it was published for PublishLead")
	}
	switched := t1.Add(domain.PublishLead)
	if k, _ := s.Signing(switched); k.KeyID != "k2" {
		t.Fatal("the new key does not sign after PublishLead")
	}
	// The last token of k1 is signed just before the switch and lives
	// MaxTokenLifetime: k1 stays published until then (and the margin).
	lastExpiry := switched.Add(domain.MaxTokenLifetime)
	if evs, _ := s.Rotate(lastExpiry, nil); len(evs) != 0 || len(s.Keys) != 2 {
		t.Fatalf("k1 retired while its tokens live: %v", evs)
	}
	evs, _ = s.Rotate(lastExpiry.Add(domain.RetireMargin), nil)
	if len(evs) != 1 || evs[0].(domain.SigningKeyRetired).KeyID != "k1" {
		t.Fatalf("k1 not retired after its tokens expired: %v", evs)
	}
	if got := ids(s); !slices.Equal(got, []string{"k2"}) {
		t.Fatalf("published %v", got)
	}
	// The newest key is never retired, however old.
	if evs, _ := s.Rotate(t1.Add(100*period), nil); len(evs) != 0 {
		t.Fatalf("the only key retired: %v", evs)
	}
	if domain.JWKSMaxAge >= domain.PublishLead {
		t.Fatal("JWKS caches could miss a new key before it signs")
	}
}
