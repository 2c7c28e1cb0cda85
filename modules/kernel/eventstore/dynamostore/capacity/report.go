package capacity

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Limits are DynamoDB's per-partition throughput limits.
type Limits struct {
	WritePerPartition float64 // write units/s one partition takes (1,000)
	ReadPerPartition  float64 // read units/s one partition takes (3,000)
}

// DefaultLimits are DynamoDB's published per-partition limits.
var DefaultLimits = Limits{WritePerPartition: 1000, ReadPerPartition: 3000}

// Kind is reads or writes.
type Kind int

// The kinds of units.
const (
	Write Kind = iota
	Read
)

func (k Kind) String() string {
	if k == Read {
		return "read"
	}
	return "write"
}

// Ceiling is the rate of an operation at which one partition key reaches its
// limit.
type Ceiling struct {
	Kind       Kind
	PerSecond  float64 // +Inf when no key bounds it
	Key        string  // the key that caps it (a hashed family's name when Shards > 0)
	Tenant     string  // single-tenant ceilings: the tenant
	UnitsPerOp float64 // units one operation spends on Key (on the whole family when Shards > 0)
	// A hashed family's ceiling (see Families) has Shards > 0: its shards;
	// Cluster, the variance of a shard's units per second over their mean
	// (1 when every unit lands on its own hash draw; 2 when an item's two
	// writes, put and delete, land on its shard together); Even, the rate at
	// which the mean shard reaches the limit (no margin).
	Shards  int
	Cluster float64
	Even    float64
}

// Unbounded reports whether no key bounds the operation.
func (c Ceiling) Unbounded() bool { return math.IsInf(c.PerSecond, 1) }

// Hashed reports whether a hashed family of keys (not one key) caps the
// operation.
func (c Ceiling) Hashed() bool { return c.Shards > 0 }

func (c Ceiling) String() string {
	if c.Unbounded() {
		return "unbounded"
	}
	if c.Hashed() {
		return fmt.Sprintf("%s/s (%s: %.4g %s units/op over %s shards, variance %.3g x mean; busiest shard at mean + %dσ; even spread %s/s)",
			thousands(c.PerSecond), c.Key, c.UnitsPerOp, c.Kind, thousands(float64(c.Shards)), c.Cluster, SpreadSigmas, thousands(c.Even))
	}
	return fmt.Sprintf("%s/s (%s: %.4g %s units/op)", thousands(c.PerSecond), c.Key, c.UnitsPerOp, c.Kind)
}

// Families tells which keys are shards of a hashed family: keys whose shard
// is a hash of the item written, such as the outbox index's
// "gsi1:OUTBOX#<n>" (a hash of the work id) or a write-sharded list
// partition "list4:T#<t>#L#<list>#<partition>#<n>" (a hash of the row key).
// For such a key (as Units.Key writes it) it returns the family's name (the
// key with its shard replaced by "*", by convention) and its number of
// shards; ok false for every other key. A family of one shard is one key:
// it is counted as one.
type Families func(key string) (family string, shards int, ok bool)

// SpreadSigmas is the margin of a hashed family's write ceiling: the rate at
// which a shard's mean write units per second plus this many standard
// deviations of its units in a 1-second window reach the partition limit.
const SpreadSigmas = 3

// spreadCeiling is the rate of an operation that puts unitsPerOp write units
// on a family of shards shards, at which a shard's mean units per second λ
// plus SpreadSigmas standard deviations (variance cluster·λ) reach limit:
// λ + z·√(cluster·λ) = limit, so √λ = (√(z²·cluster + 4·limit) − z·√cluster) / 2.
// even is the rate at which λ alone reaches limit.
func spreadCeiling(limit, unitsPerOp float64, shards int, cluster float64) (ceiling, even float64) {
	z := float64(SpreadSigmas)
	x := (math.Sqrt(z*z*cluster+4*limit) - z*math.Sqrt(cluster)) / 2
	return x * x * float64(shards) / unitsPerOp, limit * float64(shards) / unitsPerOp
}

// KeyLoad is a key's units per operation.
type KeyLoad struct {
	Key   string
	PerOp float64
}

// OpStats are the figures of one workload operation.
type OpStats struct {
	Op          string
	Count       int // operations (distinct instances)
	Requests    int // DynamoDB requests
	Failed      int // requests that failed their condition (charged)
	Approximate int // writes costed without knowing the old item
	// Mean units per operation.
	TableWCU, IndexWCU, TableRCU, IndexRCU float64
	// ReportedWCU is what DynamoDB (Local) reported per operation: shown for
	// comparison, never used.
	ReportedWCU float64
	// The busiest key of the operation, with its units per operation.
	BusiestWrite, BusiestRead KeyLoad
	// Ceilings: platform-wide over shared keys, one tenant over its keys.
	// With Families (NewReportWith), the write ceilings count a hashed
	// family as a whole (its units spread over its shards, with a margin:
	// see Families and SpreadSigmas) and its shards not one by one; the
	// read ceilings always count every key by its own units.
	PlatformWrite, PlatformRead, TenantWrite, TenantRead Ceiling
	// SamplePlatformWrite and SampleTenantWrite are the write ceilings by
	// the busiest key of the sample, every key (every shard) by its own
	// units: ADR 0007's first method, which overstates the imbalance of a
	// hashed family when the sample puts few writes on each shard. Without
	// Families they equal PlatformWrite and TenantWrite.
	SamplePlatformWrite, SampleTenantWrite Ceiling
	// HashedPlatform are the write ceilings of the hashed families shared by
	// two or more tenants, lowest first; HashedTenant those of every
	// (tenant, family) that two or more of the tenant's operations wrote,
	// lowest first. Empty without Families.
	HashedPlatform, HashedTenant []Ceiling
}

// Platform is the lower of the platform-wide write and read ceilings.
func (s OpStats) Platform() Ceiling { return lower(s.PlatformWrite, s.PlatformRead) }

// Tenant is the lower of the single-tenant write and read ceilings.
func (s OpStats) Tenant() Ceiling { return lower(s.TenantWrite, s.TenantRead) }

func lower(a, b Ceiling) Ceiling {
	if b.PerSecond < a.PerSecond {
		return b
	}
	return a
}

// KeyStats are the units of one partition key over the whole workload.
type KeyStats struct {
	Key         string
	Tenants     int  // distinct tenants it was touched for
	Shared      bool // Tenants >= 2
	Read, Write float64
	ReadShare   float64 // of all read units
	WriteShare  float64 // of all write units
}

// Report is the capacity report of a workload.
type Report struct {
	Limits             Limits
	Ops                []OpStats  // by name
	Keys               []KeyStats // busiest first (larger share of reads or writes)
	TotalRead          float64
	TotalWrite         float64
	TotalReportedWrite float64 // DynamoDB (Local)'s write figure, for comparison
	// Hashed: the write ceilings count hashed families as wholes
	// (NewReportWith with Families).
	Hashed bool
}

// famAgg is what one operation (or one tenant's operations) wrote on one
// hashed family.
type famAgg struct {
	shards    int
	units     float64            // write units on the family
	items     map[string]float64 // item written (table pk, sk) -> its write units on the family
	groups    map[string]float64 // operation instance (else the request) -> its write units on the family
	instances map[string]bool    // operation instances that wrote the family
}

func (f *famAgg) add(group, instance string, units float64) {
	f.units += units
	f.groups[group] += units
	if instance != "" {
		f.instances[instance] = true
	}
}

// ceiling is the family's write ceiling for n operations (see Families):
// per operation u units, in items of c units each landing on one shard
// (hash draws). With operations arriving at random (Poisson) at rate R, a
// shard's units per second have mean λ = R·u/S and variance
// R·E[X²], X the units one operation puts on the shard:
// E[X²] = Σc²/S + (E[(Σc)²] − Σc²)/S², so variance/λ =
// k + (E[(Σc)²]/u − k)/S with k = Σc²/Σc (the unit-weighted mean item).
// Items known only from their units (requests without Writes) count as one
// unit each.
func (f *famAgg) ceiling(kind Kind, limit float64, n float64, key, tenant string) Ceiling {
	u := f.units / n
	var sum, sumSq float64
	for _, c := range f.items {
		sum += c
		sumSq += c * c
	}
	k := 1.0
	if sum > 0 {
		k = sumSq / sum
	}
	var groupSq float64
	for _, g := range f.groups {
		groupSq += g * g
	}
	cluster := k + (groupSq/n/u-k)/float64(f.shards)
	c, even := spreadCeiling(limit, u, f.shards, cluster)
	return Ceiling{Kind: kind, PerSecond: c, Key: key, Tenant: tenant, UnitsPerOp: u, Shards: f.shards, Cluster: cluster, Even: even}
}

func getFam[K comparable](m map[K]*famAgg, k K, shards int) *famAgg {
	f := m[k]
	if f == nil {
		f = &famAgg{shards: shards, items: map[string]float64{}, groups: map[string]float64{}, instances: map[string]bool{}}
		m[k] = f
	}
	return f
}

type agg struct{ read, write float64 }

func (a *agg) get(k Kind) float64 {
	if k == Read {
		return a.read
	}
	return a.write
}

// NewReport computes the report of reqs (zero Limits: DefaultLimits), every
// key counted by its own units (NewReportWith without Families).
func NewReport(reqs []Request, l Limits) *Report { return NewReportWith(reqs, l, nil) }

// NewReportWith computes the report of reqs (zero Limits: DefaultLimits).
//
// A key's tenant is the tenant of its prefix "T#<tenant>#"; units on a key
// without one (global rows "G#...", outbox shards "OUTBOX#...") belong to the
// tenant of the request. A key is shared when its units belong to two or
// more tenants.
//
// Platform ceiling of an operation, per kind: the minimum over the shared
// keys it touches of limit / (its units on the key / its count). Keys of one
// tenant do not bound the platform (more tenants, more keys). Single-tenant
// ceiling: the minimum over every (tenant, key) that two or more operations
// of that tenant touched of limit / (the units of the operations of that
// tenant on the key / the number of operations of that tenant), i.e. the rate
// of the busiest tenant when all load came from it. A key only one operation
// touched (the stream or row of an entity the operation created) scales with
// the entities and bounds nothing.
//
// With fam (Families), the write ceilings count every hashed family as a
// whole instead of its shards one by one: the family's measured units per
// operation spread over its shards, at the rate where a shard's mean plus
// SpreadSigmas standard deviations of its 1-second load reach the limit
// (famAgg.ceiling). A family bounds the platform when its keys served two or
// more tenants, and one tenant when two or more of that tenant's operations
// wrote it. The sample's per-key write ceilings are kept (SamplePlatformWrite,
// SampleTenantWrite).
func NewReportWith(reqs []Request, l Limits, fam Families) *Report {
	if l == (Limits{}) {
		l = DefaultLimits
	}
	type tk struct{ tenant, key string }
	type opAgg struct {
		stats     OpStats
		instances map[string]bool
		keys      map[string]*agg
		tenantKey map[tk]*agg
		keyOps    map[tk]map[string]bool     // (tenant, key) -> instances that touched it
		tenantOps map[string]map[string]bool // tenant -> instances
		fams      map[string]*famAgg         // hashed family -> its writes
		tenantFam map[tk]*famAgg             // (tenant, hashed family) -> its writes
	}
	ops := map[string]*opAgg{}
	keys := map[string]*agg{}
	keyTenants := map[string]map[string]bool{}
	famTenants := map[string]map[string]bool{}
	// hashed is the family of a hashed key ("" for any other key).
	hashed := func(key string) (string, int) {
		if fam == nil {
			return "", 0
		}
		if f, shards, ok := fam(key); ok && shards > 1 {
			return f, shards
		}
		return "", 0
	}
	rep := &Report{Limits: l, Hashed: fam != nil}
	for i, q := range reqs {
		o := ops[q.Op]
		if o == nil {
			o = &opAgg{stats: OpStats{Op: q.Op}, instances: map[string]bool{}, keys: map[string]*agg{},
				tenantKey: map[tk]*agg{}, keyOps: map[tk]map[string]bool{}, tenantOps: map[string]map[string]bool{},
				fams: map[string]*famAgg{}, tenantFam: map[tk]*famAgg{}}
			ops[q.Op] = o
		}
		group := q.Instance
		if group == "" {
			group = "\x00request " + strconv.Itoa(i)
		}
		for _, w := range q.Writes {
			key := w.PK
			if w.Index != "" {
				key = w.Index + ":" + w.PK
			}
			f, shards := hashed(key)
			if f == "" {
				continue
			}
			tenant := KeyTenant(w.PK)
			if tenant == "" {
				tenant = q.Tenant
			}
			item := w.ItemPK + "\x00" + w.ItemSK
			getFam(o.fams, f, shards).items[item] += w.Units
			if tenant != "" {
				getFam(o.tenantFam, tk{tenant, f}, shards).items[item] += w.Units
			}
		}
		o.stats.Requests++
		if q.Failed {
			o.stats.Failed++
		}
		if q.Approximate {
			o.stats.Approximate++
		}
		o.stats.ReportedWCU += q.ReportedWrite
		rep.TotalReportedWrite += q.ReportedWrite
		if q.Instance != "" {
			o.instances[q.Instance] = true
		}
		for _, u := range q.Units {
			k := u.Key()
			tenant := KeyTenant(u.PK)
			if tenant == "" {
				tenant = q.Tenant
			}
			if u.Index == "" {
				o.stats.TableWCU += u.Write
				o.stats.TableRCU += u.Read
			} else {
				o.stats.IndexWCU += u.Write
				o.stats.IndexRCU += u.Read
			}
			rep.TotalRead += u.Read
			rep.TotalWrite += u.Write
			for _, a := range []*agg{get(o.keys, k), get(keys, k)} {
				a.read += u.Read
				a.write += u.Write
			}
			if f, shards := hashed(k); f != "" {
				if tenant != "" {
					if famTenants[f] == nil {
						famTenants[f] = map[string]bool{}
					}
					famTenants[f][tenant] = true
				}
				if u.Write > 0 {
					getFam(o.fams, f, shards).add(group, q.Instance, u.Write)
					if tenant != "" {
						getFam(o.tenantFam, tk{tenant, f}, shards).add(group, q.Instance, u.Write)
					}
				}
			}
			if tenant != "" {
				a := get(o.tenantKey, tk{tenant, k})
				a.read += u.Read
				a.write += u.Write
				if keyTenants[k] == nil {
					keyTenants[k] = map[string]bool{}
				}
				keyTenants[k][tenant] = true
				if q.Instance != "" {
					if o.tenantOps[tenant] == nil {
						o.tenantOps[tenant] = map[string]bool{}
					}
					o.tenantOps[tenant][q.Instance] = true
					x := tk{tenant, k}
					if o.keyOps[x] == nil {
						o.keyOps[x] = map[string]bool{}
					}
					o.keyOps[x][q.Instance] = true
				}
			}
		}
	}

	for k, a := range keys {
		ks := KeyStats{Key: k, Tenants: len(keyTenants[k]), Read: a.read, Write: a.write}
		ks.Shared = ks.Tenants >= 2
		ks.ReadShare = share(a.read, rep.TotalRead)
		ks.WriteShare = share(a.write, rep.TotalWrite)
		rep.Keys = append(rep.Keys, ks)
	}
	slices.SortFunc(rep.Keys, func(a, b KeyStats) int {
		if c := -cmpFloat(max(a.WriteShare, a.ReadShare), max(b.WriteShare, b.ReadShare)); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	shared := map[string]bool{}
	for _, ks := range rep.Keys {
		shared[ks.Key] = ks.Shared
	}

	limit := func(k Kind) float64 {
		if k == Read {
			return l.ReadPerPartition
		}
		return l.WritePerPartition
	}
	for _, o := range ops {
		s := &o.stats
		s.Count = len(o.instances)
		n := float64(max(s.Count, 1))
		s.TableWCU /= n
		s.IndexWCU /= n
		s.TableRCU /= n
		s.IndexRCU /= n
		s.ReportedWCU /= n
		for _, kind := range []Kind{Write, Read} {
			// sample: every key by its own units; ceiling: with Families,
			// hashed keys of writes by their family instead.
			busiest := KeyLoad{}
			platform := Ceiling{Kind: kind, PerSecond: math.Inf(1)}
			samplePlatform := platform
			for _, k := range sortedKeys(o.keys) {
				perOp := o.keys[k].get(kind) / n
				if perOp <= 0 {
					continue
				}
				if perOp > busiest.PerOp {
					busiest = KeyLoad{Key: k, PerOp: perOp}
				}
				if !shared[k] {
					continue
				}
				c := Ceiling{Kind: kind, PerSecond: limit(kind) / perOp, Key: k, UnitsPerOp: perOp}
				if c.PerSecond < samplePlatform.PerSecond {
					samplePlatform = c
				}
				if f, _ := hashed(k); f != "" && kind == Write {
					continue
				}
				if c.PerSecond < platform.PerSecond {
					platform = c
				}
			}
			tenant := Ceiling{Kind: kind, PerSecond: math.Inf(1)}
			sampleTenant := tenant
			for _, x := range sortedTenantKeys(o.tenantKey, func(x tk) string { return x.tenant + "\x00" + x.key }) {
				units := o.tenantKey[x].get(kind)
				// A key that one operation alone touched is a new entity's
				// (its stream, its row): it scales with the entities and
				// caps nothing. Only keys the tenant's operations share count.
				if units <= 0 || len(o.keyOps[x]) < 2 {
					continue
				}
				perOp := units / float64(max(len(o.tenantOps[x.tenant]), 1))
				c := Ceiling{Kind: kind, PerSecond: limit(kind) / perOp, Key: x.key, Tenant: x.tenant, UnitsPerOp: perOp}
				if c.PerSecond < sampleTenant.PerSecond {
					sampleTenant = c
				}
				if f, _ := hashed(x.key); f != "" && kind == Write {
					continue
				}
				if c.PerSecond < tenant.PerSecond {
					tenant = c
				}
			}
			if kind == Read {
				s.BusiestRead, s.PlatformRead, s.TenantRead = busiest, samplePlatform, sampleTenant
				continue
			}
			s.BusiestWrite, s.SamplePlatformWrite, s.SampleTenantWrite = busiest, samplePlatform, sampleTenant
			if fam == nil {
				s.PlatformWrite, s.TenantWrite = samplePlatform, sampleTenant
				continue
			}
			for _, f := range sortedFams(o.fams, func(f string) string { return f }) {
				if o.fams[f].units <= 0 || len(famTenants[f]) < 2 {
					continue // one tenant's keys: more tenants, more keys
				}
				c := o.fams[f].ceiling(Write, l.WritePerPartition, n, f, "")
				s.HashedPlatform = append(s.HashedPlatform, c)
				if c.PerSecond < platform.PerSecond {
					platform = c
				}
			}
			for _, x := range sortedFams(o.tenantFam, func(x tk) string { return x.tenant + "\x00" + x.key }) {
				a := o.tenantFam[x]
				if a.units <= 0 || len(a.instances) < 2 {
					continue
				}
				c := a.ceiling(Write, l.WritePerPartition, float64(max(len(o.tenantOps[x.tenant]), 1)), x.key, x.tenant)
				s.HashedTenant = append(s.HashedTenant, c)
				if c.PerSecond < tenant.PerSecond {
					tenant = c
				}
			}
			byRate := func(a, b Ceiling) int { return cmpFloat(a.PerSecond, b.PerSecond) }
			slices.SortStableFunc(s.HashedPlatform, byRate)
			slices.SortStableFunc(s.HashedTenant, byRate)
			s.PlatformWrite, s.TenantWrite = platform, tenant
		}
		rep.Ops = append(rep.Ops, *s)
	}
	slices.SortFunc(rep.Ops, func(a, b OpStats) int { return strings.Compare(a.Op, b.Op) })
	return rep
}

func get[K comparable](m map[K]*agg, k K) *agg {
	a := m[k]
	if a == nil {
		a = &agg{}
		m[k] = a
	}
	return a
}

func sortedFams[K comparable](m map[K]*famAgg, name func(K) string) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b K) int { return strings.Compare(name(a), name(b)) })
	return ks
}

func sortedKeys(m map[string]*agg) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func sortedTenantKeys[K comparable](m map[K]*agg, name func(K) string) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b K) int { return strings.Compare(name(a), name(b)) })
	return ks
}

func share(part, whole float64) float64 {
	if whole <= 0 {
		return 0
	}
	return part / whole
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Op returns the figures of one operation.
func (r *Report) Op(op string) (OpStats, bool) {
	for _, s := range r.Ops {
		if s.Op == op {
			return s, true
		}
	}
	return OpStats{}, false
}

// PlatformCeiling is op's platform-wide ceiling (the lower of reads and
// writes); unbounded (and ok false) when the workload had no such op.
func (r *Report) PlatformCeiling(op string) (Ceiling, bool) {
	s, ok := r.Op(op)
	if !ok {
		return Ceiling{PerSecond: math.Inf(1)}, false
	}
	return s.Platform(), true
}

// TenantCeiling is op's single-tenant ceiling (the lower of reads and writes).
func (r *Report) TenantCeiling(op string) (Ceiling, bool) {
	s, ok := r.Op(op)
	if !ok {
		return Ceiling{PerSecond: math.Inf(1)}, false
	}
	return s.Tenant(), true
}

// SharedKeys returns the shared keys, busiest first.
func (r *Report) SharedKeys() []KeyStats {
	var out []KeyStats
	for _, k := range r.Keys {
		if k.Shared {
			out = append(out, k)
		}
	}
	return out
}

// String is the printed report.
func (r *Report) String() string {
	var b bytes.Buffer
	_, _ = r.WriteTo(&b)
	return b.String()
}

// topShared is how many shared keys the printed report lists.
const topShared = 10

// WriteTo prints the report: units per operation, ceilings per operation,
// and the busiest shared keys with their share of all units.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Capacity per operation (mean units per operation; write units computed from item sizes by AWS rules, read units as DynamoDB Local reports them)\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "operation\t    ops\treq/op\tWCU table\tWCU index\tWCU total\tRCU table\tRCU index\tRCU total\tbusiest write key (WCU/op)\tbusiest read key (RCU/op)\t")
	for _, s := range r.Ops {
		n := float64(max(s.Count, 1))
		fmt.Fprintf(tw, "%s\t%7d\t%6.1f\t%9.2f\t%9.2f\t%9.2f\t%9.2f\t%9.2f\t%9.2f\t%s\t%s\t\n", s.Op, s.Count, float64(s.Requests)/n,
			s.TableWCU, s.IndexWCU, s.TableWCU+s.IndexWCU, s.TableRCU, s.IndexRCU, s.TableRCU+s.IndexRCU,
			load(s.BusiestWrite), load(s.BusiestRead))
	}
	_ = tw.Flush()

	fmt.Fprintf(&b, "\nCeilings (per partition: %s WCU/s, %s RCU/s; platform: over keys shared by 2+ tenants; one tenant: over the keys of the busiest tenant)\n",
		thousands(r.Limits.WritePerPartition), thousands(r.Limits.ReadPerPartition))
	if r.Hashed {
		fmt.Fprintf(&b, "Writes on a hashed family of keys (outbox index shards, write-sharded list partitions) count for the family: its units per operation spread over its shards, up to the rate at which a shard's mean plus %d standard deviations of its units in 1 s (Poisson arrivals; an item's writes land on its shard together) reach the limit. Other keys, and all reads, by their own units per operation.\n", SpreadSigmas)
	}
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "operation\tplatform (writes)\tplatform (reads)\tone tenant (writes)\tone tenant (reads)\t")
	for _, s := range r.Ops {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", s.Op, s.PlatformWrite, s.PlatformRead, s.TenantWrite, s.TenantRead)
	}
	_ = tw.Flush()
	if r.Hashed {
		fmt.Fprintf(&b, "\nWrite ceilings by the sample's busiest key, hashed shards one by one (ADR 0007's first method: a sample that puts a few writes on each shard overstates the hash's imbalance)\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "operation\tplatform (writes, sample)\tone tenant (writes, sample)\t")
		for _, s := range r.Ops {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", s.Op, s.SamplePlatformWrite, s.SampleTenantWrite)
		}
		_ = tw.Flush()
	}

	shared := r.SharedKeys()
	fmt.Fprintf(&b, "\nBusiest keys shared by several tenants (%d shared of %d keys; share of all units of the workload)\n", len(shared), len(r.Keys))
	if len(shared) == 0 {
		fmt.Fprintln(&b, "  none")
	} else {
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "key\ttenants\t       WCU\tshare of WCU\t       RCU\tshare of RCU\t")
		for _, k := range shared[:min(topShared, len(shared))] {
			fmt.Fprintf(tw, "%s\t%7d\t%10.1f\t%11.3f%%\t%10.1f\t%11.3f%%\t\n", k.Key, k.Tenants, k.Write, 100*k.WriteShare, k.Read, 100*k.ReadShare)
		}
		_ = tw.Flush()
	}
	reqs, failed, approx := 0, 0, 0
	for _, s := range r.Ops {
		reqs, failed, approx = reqs+s.Requests, failed+s.Failed, approx+s.Approximate
	}
	fmt.Fprintf(&b, "\nTotals: %d requests (%d failed their condition and were charged, %d writes costed without the old item), %s WCU computed (DynamoDB Local reported %s, not used), %s RCU\n",
		reqs, failed, approx, thousands(r.TotalWrite), thousands(r.TotalReportedWrite), thousands(r.TotalRead))
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

func load(k KeyLoad) string {
	if k.Key == "" {
		return "-"
	}
	return fmt.Sprintf("%s (%.3g)", k.Key, k.PerOp)
}

// thousands formats v rounded to an integer with thousands separators.
func thousands(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Sprint(v)
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
