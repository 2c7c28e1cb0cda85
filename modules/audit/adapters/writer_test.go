package adapters_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/audit/adapters"
	"github.com/switchboard-dev/switchboard/modules/audit/app"
	"github.com/switchboard-dev/switchboard/modules/audit/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
)

// fakeLog records appends; fail makes the next appends fail.
type fakeLog struct {
	mu    sync.Mutex
	got   map[string][]domain.Entry
	calls int
	fail  int
}

func (l *fakeLog) Append(_ context.Context, tenantID string, entries []domain.Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.fail > 0 {
		l.fail--
		return errors.New("store down")
	}
	if l.got == nil {
		l.got = map[string][]domain.Entry{}
	}
	l.got[tenantID] = append(l.got[tenantID], entries...)
	return nil
}

func (l *fakeLog) List(context.Context, string, app.Query) ([]domain.Entry, string, error) {
	return nil, "", nil
}

func (l *fakeLog) count(tenant string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.got[tenant])
}

const t1, t2 = "tnt_01JQ00000000000000000000T1", "tnt_01JQ00000000000000000000T2"

func as(kind invocation.PrincipalKind) context.Context {
	return invocation.With(context.Background(), &invocation.Context{Principal: invocation.Principal{Kind: kind}})
}

func entry(tenant, inv string) rpc.AuditEntry {
	return rpc.AuditEntry{At: time.Now(), TenantID: tenant, InvocationID: inv, Endpoint: "get-tenant", Kind: rpc.KindQuery,
		Action: "tenancy:get-tenant", Outcome: rpc.OutcomeAllowed, Status: 200, Source: rpc.Source{IP: "192.0.2.1", UserAgent: "ua"},
		Principal: "service_account:sva_1", CredentialID: "key_1", Duration: 1500 * time.Microsecond}
}

// Without Start, FlushAudit writes the entries, grouped by tenant; the
// operator's go to its namespace; a call of no tenant is not written.
func TestWriterFlushesPerTenant(t *testing.T) {
	log := &fakeLog{}
	w := &adapters.Writer{Log: log, IDs: ids.NewULIDs()}
	sa := as(invocation.KindServiceAccount)
	w.Audit(sa, entry(t1, "inv_1"))
	w.Audit(sa, entry(t2, "inv_2"))
	w.Audit(sa, entry(t1, "inv_3"))
	w.Audit(as(invocation.KindOperator), entry("", "inv_4"))
	w.Audit(as(invocation.KindAnonymous), entry("", "inv_5"))
	if log.calls != 0 {
		t.Fatal("written before the flush")
	}
	w.FlushAudit(context.Background())
	if log.count(t1) != 2 || log.count(t2) != 1 || log.count(eventstore.OperatorNamespace) != 1 || log.calls != 3 {
		t.Fatalf("appends %v in %d calls", log.got, log.calls)
	}
	e := log.got[t1][1]
	if e.InvocationID != "inv_3" || !strings.HasPrefix(e.AuditID, "aud_") || e.TenantID != t1 || e.DurationMs != 1.5 ||
		e.SourceIP != "192.0.2.1" || e.UserAgent != "ua" || e.Kind != "query" || e.CredentialID != "key_1" || e.Principal != "service_account:sva_1" {
		t.Fatalf("entry %+v", e)
	}
	w.FlushAudit(context.Background())
	if log.calls != 3 {
		t.Fatal("an empty flush wrote")
	}
}

// A store failure is retried; entries it cannot write are logged as lost,
// with their invocation ids; a full writer logs what it drops.
func TestWriterRetriesThenLogsLoss(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	log := &fakeLog{fail: 2}
	w := &adapters.Writer{Log: log, IDs: ids.NewULIDs(), Logger: logger, MaxPending: 2}
	sa := as(invocation.KindServiceAccount)
	w.Audit(sa, entry(t1, "inv_1"))
	w.FlushAudit(context.Background())
	if log.count(t1) != 1 || log.calls != 3 || out.Len() != 0 {
		t.Fatalf("after two failures: %d entries in %d calls; log %s", log.count(t1), log.calls, out.String())
	}
	log.fail = 10
	w.Audit(sa, entry(t1, "inv_2"))
	w.Audit(sa, entry(t1, "inv_3"))
	w.Audit(sa, entry(t1, "inv_4")) // over MaxPending
	if !strings.Contains(out.String(), `"msg":"audit entries lost"`) || !strings.Contains(out.String(), "inv_4") {
		t.Fatalf("a dropped entry is not logged: %s", out.String())
	}
	out.Reset()
	w.FlushAudit(context.Background())
	if !strings.Contains(out.String(), "audit write failed") || !strings.Contains(out.String(), "inv_2") || !strings.Contains(out.String(), "inv_3") {
		t.Fatalf("lost entries not logged: %s", out.String())
	}
}

// Started, the writer writes in the background; Stop writes the rest.
func TestWriterBackground(t *testing.T) {
	log := &fakeLog{}
	w := &adapters.Writer{Log: log, IDs: ids.NewULIDs(), FlushEvery: 10 * time.Millisecond, MaxBatch: 5}
	w.Start()
	sa := as(invocation.KindServiceAccount)
	for i := range 12 {
		w.Audit(sa, entry(t1, "inv_"+string(rune('a'+i))))
	}
	w.FlushAudit(context.Background()) // ignored while started
	deadline := time.Now().Add(5 * time.Second)
	for log.count(t1) < 12 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if log.count(t1) != 12 {
		t.Fatalf("%d of 12 written in the background", log.count(t1))
	}
	w.Audit(sa, entry(t2, "inv_last"))
	w.Stop(context.Background())
	if log.count(t2) != 1 {
		t.Fatal("Stop did not write the rest")
	}
}

// An entry the store refuses for good (an oversized row) does not take the
// others of its flush with it, and is logged as lost without retries; one
// tenant's waiting entries cannot push out another's (review findings).
func TestWriterIsolatesRefusedEntriesAndTenants(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out bytes.Buffer
	l := &adapters.Log{Store: st, Retention: time.Hour}
	w := &adapters.Writer{Log: l, IDs: ids.NewULIDs(), Logger: slog.New(slog.NewJSONHandler(&out, nil))}
	sa := as(invocation.KindServiceAccount)
	w.Audit(sa, entry(t1, "inv_1"))
	big := entry(t1, "inv_big")
	big.Resources = []string{strings.Repeat("x", eventstore.MaxItemBytes)}
	w.Audit(sa, big)
	w.Audit(sa, entry(t1, "inv_2"))
	w.FlushAudit(context.Background())
	got, _, err := l.List(context.Background(), t1, app.Query{Limit: 100})
	if err != nil || len(got) != 2 {
		t.Fatalf("%d entries written (%v), want 2", len(got), err)
	}
	if !strings.Contains(out.String(), "audit entries lost") || !strings.Contains(out.String(), "inv_big") {
		t.Fatalf("the refused entry is not logged: %s", out.String())
	}

	fl := &fakeLog{}
	fw := &adapters.Writer{Log: fl, IDs: ids.NewULIDs(), MaxPendingPerTenant: 3}
	for i := range 5 {
		fw.Audit(sa, entry(t1, fmt.Sprint("inv_", i)))
	}
	fw.Audit(sa, entry(t2, "inv_other"))
	fw.FlushAudit(context.Background())
	if fl.count(t1) != 3 || fl.count(t2) != 1 {
		t.Fatalf("t1 %d (want its 3), t2 %d (want 1)", fl.count(t1), fl.count(t2))
	}
	// Stop twice, and audits after Stop are written by FlushAudit.
	fw.Start()
	fw.Stop(context.Background())
	fw.Stop(context.Background())
	fw.Audit(sa, entry(t2, "inv_late"))
	fw.FlushAudit(context.Background())
	if fl.count(t2) != 2 {
		t.Fatalf("after Stop: t2 %d, want 2", fl.count(t2))
	}
}
