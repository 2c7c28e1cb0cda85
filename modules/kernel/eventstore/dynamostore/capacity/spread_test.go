package capacity

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// testFamilies: gsi1 "OUTBOX#<n>" of 8 shards, the list "m" of tenant t1
// (4 shards) and the list "one" (1 shard: one key, not a family).
func testFamilies(key string) (string, int, bool) {
	i := strings.LastIndexByte(key, '#')
	if i < 0 {
		return "", 0, false
	}
	if _, err := strconv.Atoi(key[i+1:]); err != nil {
		return "", 0, false
	}
	family := key[:i+1] + "*"
	switch {
	case strings.HasPrefix(key, "gsi1:OUTBOX#"):
		return family, 8, true
	case strings.HasPrefix(key, "list2:T#t1#L#m##"):
		return family, 4, true
	case strings.HasPrefix(key, "list2:T#t1#L#one##"):
		return family, 1, true
	}
	return "", 0, false
}

// write is a request of one instance writing units on index keys, one item
// per write.
func write(op, tenant, instance string, ws ...ItemWrite) Request {
	q := Request{Op: op, Tenant: tenant, Instance: instance, Writes: ws}
	for _, w := range ws {
		q.Units = append(q.Units, Units{Index: w.Index, PK: w.PK, Write: w.Units})
	}
	return q
}

func TestSpreadCeiling(t *testing.T) {
	for _, cluster := range []float64{1, 2, 1.5} {
		c, even := spreadCeiling(1000, 18, 2048, cluster)
		lambda := c * 18 / 2048 // a shard's mean units per second at the ceiling
		if got := lambda + SpreadSigmas*math.Sqrt(cluster*lambda); math.Abs(got-1000) > 1e-6 {
			t.Errorf("cluster %v: mean + %dσ at the ceiling = %v, want 1000", cluster, SpreadSigmas, got)
		}
		if want := 1000 * 2048 / 18.0; math.Abs(even-want) > 1e-6 || c >= even {
			t.Errorf("cluster %v: ceiling %v, even %v (want %v, above the ceiling)", cluster, c, even, want)
		}
	}
	// The figures ADR 0008 quotes: 909.5 units/s per shard for independent
	// writes, 874.5 when they come in pairs.
	if c, _ := spreadCeiling(1000, 1, 1, 1); math.Abs(c-909.52) > 0.01 {
		t.Errorf("cluster 1: %v units/s per shard", c)
	}
	if c, _ := spreadCeiling(1000, 1, 1, 2); math.Abs(c-874.54) > 0.01 {
		t.Errorf("cluster 2: %v units/s per shard", c)
	}
}

func TestHashedFamilyCeilings(t *testing.T) {
	var reqs []Request
	// Four tenants' work items: an outbox entry put and then deleted
	// (1 unit each on its gsi1 shard), three of the four on shard 1.
	for i, shard := range []string{"1", "1", "1", "5"} {
		tn := "t" + strconv.Itoa(i+1)
		pk := "T#" + tn + "#W#w" + strconv.Itoa(i)
		gsi := ItemWrite{Index: "gsi1", PK: "OUTBOX#" + shard, ItemPK: pk, ItemSK: "W", Units: 1}
		inst := "w" + strconv.Itoa(i)
		reqs = append(reqs,
			write("work", tn, inst, ItemWrite{PK: pk, ItemPK: pk, ItemSK: "W", Units: 2}, gsi),
			write("work", tn, inst, ItemWrite{PK: pk, ItemPK: pk, ItemSK: "W", Units: 1}, gsi))
	}
	// Tenant t1's list writes: three rows per operation in the 4-shard list
	// "m" (all in shard 0 in this sample), the tenant's head (0.5 units)
	// and the one-shard list "one" (0.25 units).
	for i := range 4 {
		inst := "l" + strconv.Itoa(i)
		var ws []ItemWrite
		for r := range 3 {
			row := "T#t1#R#rows#" + inst + "-" + strconv.Itoa(r)
			ws = append(ws, ItemWrite{Index: "list2", PK: "T#t1#L#m##0", ItemPK: row, ItemSK: "R", Units: 1})
		}
		ws = append(ws, ItemWrite{PK: "T#t1#S#tenant", ItemPK: "T#t1#S#tenant", ItemSK: "HEAD", Units: 0.5},
			ItemWrite{Index: "list2", PK: "T#t1#L#one##0", ItemPK: "T#t1#R#rows#" + inst, ItemSK: "R", Units: 0.25})
		reqs = append(reqs, write("list", "t1", inst, ws...))
	}

	rep := NewReportWith(reqs, Limits{}, testFamilies)
	if !rep.Hashed {
		t.Fatal("report not marked hashed")
	}
	work, _ := rep.Op("work")
	// Sample: shard 1 carries 6 of the 8 index units: 1.5 per work item.
	if c := work.SamplePlatformWrite; c.Key != "gsi1:OUTBOX#1" || math.Abs(c.PerSecond-1000/1.5) > 1e-6 || c.Hashed() {
		t.Errorf("sample platform ceiling %+v", c)
	}
	// Family: 2 units per item over 8 shards, an entry's two writes
	// together (cluster 2: one item per operation, so no cross term).
	want, even := spreadCeiling(1000, 2, 8, 2)
	c := work.PlatformWrite
	if c.Key != "gsi1:OUTBOX#*" || c.Shards != 8 || c.UnitsPerOp != 2 || math.Abs(c.Cluster-2) > 1e-9 ||
		math.Abs(c.PerSecond-want) > 1e-6 || math.Abs(c.Even-even) > 1e-6 {
		t.Errorf("platform ceiling %+v, want %v/s on gsi1:OUTBOX#* (even %v)", c, want, even)
	}
	if len(work.HashedPlatform) != 1 || work.HashedPlatform[0] != c {
		t.Errorf("hashed platform families %+v", work.HashedPlatform)
	}
	if p, _ := rep.PlatformCeiling("work"); p != c {
		t.Errorf("PlatformCeiling %+v, want the family's", p)
	}

	list, _ := rep.Op("list")
	// Sample: shard 0 of "m" carries all 3 units per operation.
	if c := list.SampleTenantWrite; c.Key != "list2:T#t1#L#m##0" || math.Abs(c.PerSecond-1000/3.0) > 1e-6 {
		t.Errorf("sample tenant ceiling %+v", c)
	}
	// Family: 3 units per operation in 3 items of 1 unit (k = 1) over 4
	// shards; an operation's 3 items may meet on a shard: variance/mean =
	// 1 + (3 - 1)/4.
	want, _ = spreadCeiling(1000, 3, 4, 1.5)
	c = list.TenantWrite
	if c.Key != "list2:T#t1#L#m##*" || c.Tenant != "t1" || math.Abs(c.Cluster-1.5) > 1e-9 || math.Abs(c.PerSecond-want) > 1e-6 {
		t.Errorf("tenant ceiling %+v, want %v/s on the family of list m", c, want)
	}
	if want > 2000 {
		t.Fatalf("the family (%v/s) should bind before the head (2,000/s)", want)
	}
	// The one-shard list is a key: counted by its own units, not a family.
	for _, h := range list.HashedTenant {
		if strings.Contains(h.Key, "#L#one#") {
			t.Errorf("a one-shard list counted as a hashed family: %+v", h)
		}
	}
	// Lists of one tenant never bound the platform.
	if !list.PlatformWrite.Unbounded() || len(list.HashedPlatform) != 0 {
		t.Errorf("list platform ceiling %+v, families %+v", list.PlatformWrite, list.HashedPlatform)
	}
	for _, want := range []string{"gsi1:OUTBOX#*", "over 8 shards", "mean + 3σ", "by the sample's busiest key", "gsi1:OUTBOX#1"} {
		if !strings.Contains(rep.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}

	// Without families every key counts by its own units, as before.
	plain := NewReport(reqs, Limits{})
	w, _ := plain.Op("work")
	if plain.Hashed || w.PlatformWrite != w.SamplePlatformWrite || w.PlatformWrite.Key != "gsi1:OUTBOX#1" || len(w.HashedPlatform) != 0 {
		t.Errorf("without families: %+v", w)
	}
	if strings.Contains(plain.String(), "by the sample's busiest key") {
		t.Error("a report without families prints the sample table")
	}

	// A non-hashed key that binds first stays the ceiling: the head at 4
	// units per operation (250/s) instead of 0.5.
	for i := range reqs {
		for j := range reqs[i].Units {
			if reqs[i].Units[j].PK == "T#t1#S#tenant" {
				reqs[i].Units[j].Write = 4
			}
		}
	}
	l2, _ := NewReportWith(reqs, Limits{}, testFamilies).Op("list")
	if l2.TenantWrite.Key != "T#t1#S#tenant" || math.Abs(l2.TenantWrite.PerSecond-250) > 1e-6 {
		t.Errorf("tenant ceiling %+v, want the head's 250/s", l2.TenantWrite)
	}
}

// TestSpreadVarianceMatchesSimulation checks the variance the family
// ceiling assumes (famAgg.ceiling) against a simulation of its model:
// operations arriving at random, each writing items that land on uniformly
// random shards with all their units.
func TestSpreadVarianceMatchesSimulation(t *testing.T) {
	const shards = 16
	items := []float64{2, 2, 1} // two outbox entries (put + delete), one list entry
	// The report's figure for an operation of these items.
	var reqs []Request
	for i := range 50 {
		inst := "m" + strconv.Itoa(i)
		var ws []ItemWrite
		for j, c := range items {
			ws = append(ws, ItemWrite{Index: "gsi1", PK: "OUTBOX#" + strconv.Itoa((i+j)%8), ItemPK: inst + "-" + strconv.Itoa(j), ItemSK: "W", Units: c})
		}
		reqs = append(reqs, write("m", "t"+strconv.Itoa(i%2), inst, ws...))
	}
	fam := func(key string) (string, int, bool) {
		f, _, ok := testFamilies(key)
		return f, shards, ok
	}
	s, _ := NewReportWith(reqs, Limits{}, fam).Op("m")
	cluster := s.PlatformWrite.Cluster
	if want := 1.8 + (5-1.8)/shards; math.Abs(cluster-want) > 1e-9 {
		t.Fatalf("cluster %v, want %v", cluster, want)
	}

	// Simulate 1-second windows at a rate of 160 operations/s (a shard's
	// mean: 50 units/s).
	rnd := rand.New(rand.NewPCG(1, 2))
	const rate, windows = 160.0, 5000
	var sum, sumSq float64
	for range windows {
		var load [shards]float64
		for at := rnd.ExpFloat64() / rate; at < 1; at += rnd.ExpFloat64() / rate {
			for _, c := range items {
				load[rnd.IntN(shards)] += c
			}
		}
		for _, v := range load {
			sum += v
			sumSq += v * v
		}
	}
	n := float64(windows * shards)
	mean := sum / n
	variance := sumSq/n - mean*mean
	if math.Abs(mean-50)/50 > 0.02 {
		t.Fatalf("simulated mean %v, want 50", mean)
	}
	if got := variance / mean; math.Abs(got-cluster)/cluster > 0.04 {
		t.Fatalf("simulated variance/mean %.3f, the report assumes %.3f", got, cluster)
	}
}
