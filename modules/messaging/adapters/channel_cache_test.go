package adapters_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// countingReads is a ReadModel (and a Repository, for Channel) that counts
// its loads; channels it does not know are not found.
type countingReads struct {
	app.ReadModel
	app.Repository
	known map[string]string // channel id -> tenant
	loads int
}

func (c *countingReads) ChannelByID(_ context.Context, tenantID, channelID string) (app.ChannelView, error) {
	c.loads++
	if c.known[channelID] != tenantID {
		return app.ChannelView{}, errs.NotFound("channel")
	}
	return app.ChannelView{ChannelID: channelID, Name: "n"}, nil
}

func (c *countingReads) ChannelTenant(_ context.Context, channelID string) (string, error) {
	c.loads++
	if t, ok := c.known[channelID]; ok {
		return t, nil
	}
	return "", errs.NotFound("channel")
}

func (c *countingReads) Channel(_ context.Context, tenantID, channelID string) (*domain.Channel, error) {
	c.loads++
	if c.known[channelID] != tenantID {
		return nil, errs.NotFound("channel")
	}
	return &domain.Channel{ID: channelID, TenantID: tenantID, Name: "n"}, nil
}

// TestChannelCache: a channel is read once per TTL, per tenant; a lookup
// that fails is not kept (the channel may exist a moment later); a caller
// changing its copy does not change the cache's; the cache stays bounded.
func TestChannelCache(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFixed(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	src := &countingReads{known: map[string]string{"chn_a": "tnt_1"}}
	cache := adapters.NewChannelCache(clk, time.Minute, 3)
	reads := adapters.CachedReadModel{ReadModel: src, Cache: cache}
	repo := adapters.CachedRepository{Repository: src, Cache: cache}

	for range 3 {
		if v, err := reads.ChannelByID(ctx, "tnt_1", "chn_a"); err != nil || v.ChannelID != "chn_a" {
			t.Fatalf("ChannelByID = %+v, %v", v, err)
		}
		if tn, err := reads.ChannelTenant(ctx, "chn_a"); err != nil || tn != "tnt_1" {
			t.Fatalf("ChannelTenant = %q, %v", tn, err)
		}
		ch, err := repo.Channel(ctx, "tnt_1", "chn_a")
		if err != nil || ch.Name != "n" {
			t.Fatalf("Channel = %+v, %v", ch, err)
		}
		ch.Name = "changed by a caller"
	}
	if src.loads != 3 {
		t.Fatalf("%d loads for 3 rounds of 3 lookups, want 3 (one each)", src.loads)
	}
	// Another tenant asking for the channel is not served the cached copy.
	if _, err := reads.ChannelByID(ctx, "tnt_2", "chn_a"); errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("another tenant's ChannelByID: %v, want not found", err)
	}
	// Not found is not kept: the channel appears, the next lookup finds it.
	if _, err := repo.Channel(ctx, "tnt_1", "chn_b"); err == nil {
		t.Fatal("an unknown channel was found")
	}
	src.known["chn_b"] = "tnt_1"
	if _, err := repo.Channel(ctx, "tnt_1", "chn_b"); err != nil {
		t.Fatalf("a channel created after a miss: %v", err)
	}
	// After the TTL, a lookup loads again.
	before := src.loads
	clk.Advance(time.Minute)
	if _, err := repo.Channel(ctx, "tnt_1", "chn_a"); err != nil || src.loads != before+1 {
		t.Fatalf("after the TTL: err %v, loads %d, want %d", err, src.loads, before+1)
	}
	// Forget drops a channel at once.
	before = src.loads
	cache.Forget("tnt_1", "chn_a")
	if _, err := repo.Channel(ctx, "tnt_1", "chn_a"); err != nil || src.loads != before+1 {
		t.Fatalf("after Forget: err %v, loads %d, want %d", err, src.loads, before+1)
	}
	// Bounded: many channels, never more than max kept (a lookup of each of
	// the first ones again loads some of them).
	for i := range 20 {
		id := "chn_" + string(rune('c'+i))
		src.known[id] = "tnt_1"
		if _, err := repo.Channel(ctx, "tnt_1", id); err != nil {
			t.Fatal(err)
		}
	}
	before = src.loads
	for i := range 20 {
		if _, err := repo.Channel(ctx, "tnt_1", "chn_"+string(rune('c'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if src.loads-before < 17 {
		t.Fatalf("%d of 20 lookups loaded: the cache kept more than its max of 3", src.loads-before)
	}
}
