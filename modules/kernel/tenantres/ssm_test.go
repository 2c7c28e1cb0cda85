package tenantres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
)

const (
	path      = "/switchboard/tenants/"
	tenantA   = "tnt_01K94G2D9E4H7J2K5M8N1P3QAA"
	tenantB   = "tnt_01K94G2D9E4H7J2K5M8N1P3QBB"
	queueA    = "https://sqs.eu-central-1.amazonaws.com/123456789012/switchboard-work-tnt_a"
	keyA      = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	siloedA   = `{"tier":"siloed","workQueueUrl":"` + queueA + `","kmsKeyArn":"` + keyA + `"}`
	ssmJSON   = "application/x-amz-json-1.1"
	ssmRegion = "eu-central-1"
)

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// fakeSSM speaks the AWS JSON 1.1 protocol of SSM's GetParameter: POST /,
// X-Amz-Target AmazonSSM.GetParameter, a SigV4 signature for ssm, and
// answers the parameter or SSM's ParameterNotFound error shape.
type fakeSSM struct {
	t *testing.T

	mu     sync.Mutex
	params map[string]string
	fail   string        // when set, every request fails with this error type (HTTP 400, or 500 for InternalServerError)
	hold   chan struct{} // when set, requests wait for it to close
	names  []string      // names asked for, in order
}

func (f *fakeSSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		t.Errorf("request %s %s, want POST /", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("X-Amz-Target"); got != "AmazonSSM.GetParameter" {
		t.Errorf("X-Amz-Target = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != ssmJSON {
		t.Errorf("Content-Type = %q", got)
	}
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(a, "/"+ssmRegion+"/ssm/aws4_request") {
		t.Errorf("request not signed for ssm with the static credentials: %q", a)
	}
	var in struct {
		Name           string
		WithDecryption *bool
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		t.Errorf("decode request: %v", err)
	}
	if in.WithDecryption == nil || *in.WithDecryption {
		t.Errorf("WithDecryption = %v, want false (a String parameter)", in.WithDecryption)
	}
	f.mu.Lock()
	f.names = append(f.names, in.Name)
	hold, fail := f.hold, f.fail
	value, ok := f.params[in.Name]
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	w.Header().Set("Content-Type", ssmJSON)
	w.Header().Set("X-Amzn-RequestId", "ssm-fake")
	switch {
	case fail != "":
		status := http.StatusBadRequest
		if fail == "InternalServerError" {
			status = http.StatusInternalServerError
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":"%s","message":"fake failure"}`, fail)
	case !ok:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"ParameterNotFound","message":""}`)
	default:
		_ = json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{
			"Name": in.Name, "Type": "String", "Value": value, "Version": 3, "DataType": "text",
			"ARN": "arn:aws:ssm:" + ssmRegion + ":123456789012:parameter" + in.Name, "LastModifiedDate": 1.7624e9,
		}})
	}
}

func (f *fakeSSM) set(name, value string) { f.mu.Lock(); f.params[name] = value; f.mu.Unlock() }
func (f *fakeSSM) del(name string)        { f.mu.Lock(); delete(f.params, name); f.mu.Unlock() }
func (f *fakeSSM) failWith(typ string)    { f.mu.Lock(); f.fail = typ; f.mu.Unlock() }
func (f *fakeSSM) calls() int             { f.mu.Lock(); defer f.mu.Unlock(); return len(f.names) }

type env struct {
	ssm   *fakeSSM
	clock *clock.Fixed
	res   *tenantres.SSM
}

func newEnv(t *testing.T, o tenantres.SSMOptions) *env {
	t.Helper()
	f := &fakeSSM{t: t, params: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client := ssm.New(ssm.Options{
		Region:           ssmRegion,
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
	})
	e := &env{ssm: f, clock: clock.NewFixed(t0)}
	o.Clock = e.clock
	r, err := tenantres.NewSSM(client, path, o)
	if err != nil {
		t.Fatal(err)
	}
	e.res = r
	return e
}

func (e *env) resolve(t *testing.T, tenantID string) tenantres.Resources {
	t.Helper()
	r, err := e.res.Resources(context.Background(), tenantID)
	if err != nil {
		t.Fatalf("Resources(%s): %v", tenantID, err)
	}
	return r
}

var wantA = tenantres.Resources{Found: true, Tier: tenantres.TierSiloed, WorkQueueURL: queueA, KMSKeyARN: keyA}

func TestSSMReadsTheTenantsParameter(t *testing.T) {
	e := newEnv(t, tenantres.SSMOptions{})
	e.ssm.set(path+tenantA, siloedA)
	if got := e.resolve(t, tenantA); got != wantA || !got.Siloed() {
		t.Fatalf("resources = %+v, want %+v", got, wantA)
	}
	if got := e.resolve(t, tenantB); got != (tenantres.Resources{}) || got.Siloed() {
		t.Fatalf("tenant without a parameter: %+v, want not found", got)
	}
	if want := []string{path + tenantA, path + tenantB}; fmt.Sprint(e.ssm.names) != fmt.Sprint(want) {
		t.Fatalf("parameters asked for: %v, want %v", e.ssm.names, want)
	}
	if e.res.ParameterName(tenantA) != path+tenantA {
		t.Fatalf("ParameterName = %q", e.res.ParameterName(tenantA))
	}
}

// A parameter found is kept 5 minutes, "none" 30 seconds: a deploy that adds
// a tenant's resources is noticed within 30 s, one that deletes them within
// 5 minutes.
func TestSSMCachesFoundLongerThanNotFound(t *testing.T) {
	e := newEnv(t, tenantres.SSMOptions{})
	for i := 0; i < 5; i++ {
		e.resolve(t, tenantA)
	}
	if n := e.ssm.calls(); n != 1 {
		t.Fatalf("%d calls for 5 lookups, want 1", n)
	}
	e.ssm.set(path+tenantA, siloedA) // the deploy writes the parameter
	e.clock.Advance(29 * time.Second)
	if got := e.resolve(t, tenantA); got.Found {
		t.Fatal("not found is cached for 30 s")
	}
	e.clock.Advance(time.Second)
	if got := e.resolve(t, tenantA); got != wantA {
		t.Fatalf("after 30 s: %+v, want the new parameter", got)
	}
	e.ssm.del(path + tenantA) // the parameter is deleted
	e.clock.Advance(4*time.Minute + 59*time.Second)
	if got := e.resolve(t, tenantA); got != wantA {
		t.Fatalf("found is cached for 5 minutes, got %+v", got)
	}
	e.clock.Advance(time.Second)
	if got := e.resolve(t, tenantA); got.Found {
		t.Fatalf("after 5 minutes: %+v, want not found", got)
	}
	if n := e.ssm.calls(); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
}

// SSM failing: the last answer is used (stale if error); without one the
// error is answered. Either way the call is not repeated for ErrorTTL.
func TestSSMFailureAnswersTheLastAnswerOrTheError(t *testing.T) {
	e := newEnv(t, tenantres.SSMOptions{})
	e.ssm.set(path+tenantA, siloedA)
	e.resolve(t, tenantA)
	e.ssm.failWith("InternalServerError")
	e.clock.Advance(5 * time.Minute)
	if got := e.resolve(t, tenantA); got != wantA {
		t.Fatalf("stale if error: %+v", got)
	}
	_, err := e.res.Resources(context.Background(), tenantB)
	if err == nil || !strings.Contains(err.Error(), "InternalServerError") || !strings.Contains(err.Error(), path+tenantB) {
		t.Fatalf("no previous answer: err = %v, want the SSM error naming the parameter", err)
	}
	calls := e.ssm.calls()
	for i := 0; i < 3; i++ {
		e.resolve(t, tenantA)
		if _, err := e.res.Resources(context.Background(), tenantB); err == nil {
			t.Fatal("the error is kept for ErrorTTL")
		}
	}
	if n := e.ssm.calls(); n != calls {
		t.Fatalf("%d calls within ErrorTTL, want none", n-calls)
	}
	// SSM recovers: the next lookup after ErrorTTL reads it again.
	e.ssm.failWith("")
	e.clock.Advance(tenantres.DefaultErrorTTL)
	if got := e.resolve(t, tenantB); got.Found {
		t.Fatalf("after recovery: %+v", got)
	}
	if got := e.resolve(t, tenantA); got != wantA {
		t.Fatalf("after recovery: %+v", got)
	}
}

func TestSSMAccessDeniedIsAnError(t *testing.T) {
	e := newEnv(t, tenantres.SSMOptions{})
	e.ssm.failWith("AccessDeniedException")
	_, err := e.res.Resources(context.Background(), tenantA)
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("err = %v", err)
	}
}

func TestSSMMalformedValueIsAnError(t *testing.T) {
	e := newEnv(t, tenantres.SSMOptions{})
	e.ssm.set(path+tenantA, `{"tier":"siloed"}`)
	_, err := e.res.Resources(context.Background(), tenantA)
	if !errors.Is(err, tenantres.ErrMalformed) || !strings.Contains(err.Error(), path+tenantA) {
		t.Fatalf("err = %v, want ErrMalformed naming the parameter", err)
	}
	// A good value replaced by a broken one: the last good one stays in use.
	e.ssm.set(path+tenantA, siloedA)
	e.clock.Advance(tenantres.DefaultErrorTTL)
	e.resolve(t, tenantA)
	e.ssm.set(path+tenantA, `not json`)
	e.clock.Advance(tenantres.DefaultFoundTTL)
	if got := e.resolve(t, tenantA); got != wantA {
		t.Fatalf("broken update: %+v, want the last good value", got)
	}
}

// Concurrent lookups of one tenant make one call.
func TestSSMConcurrentLookupsShareOneCall(t *testing.T) {
	e := newEnv(t, tenantres.SSMOptions{})
	e.ssm.set(path+tenantA, siloedA)
	hold := make(chan struct{})
	e.ssm.mu.Lock()
	e.ssm.hold = hold
	e.ssm.mu.Unlock()
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, err := e.res.Resources(context.Background(), tenantA); err != nil || r != wantA {
				bad.Add(1)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(hold)
	wg.Wait()
	if bad.Load() != 0 || e.ssm.calls() != 1 {
		t.Fatalf("%d bad answers, %d calls; want 0, 1", bad.Load(), e.ssm.calls())
	}
}

// A caller whose context ends stops waiting; the lookup completes for the
// others and lands in the cache.
func TestSSMCallerContextEndsWithoutFailingTheLookup(t *testing.T) {
	e := newEnv(t, tenantres.SSMOptions{})
	e.ssm.set(path+tenantA, siloedA)
	hold := make(chan struct{})
	e.ssm.mu.Lock()
	e.ssm.hold = hold
	e.ssm.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := e.res.Resources(ctx, tenantA); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	close(hold)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := e.res.Resources(context.Background(), tenantA)
		if err == nil && r == wantA {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lookup never completed: %+v, %v", r, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := e.ssm.calls(); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
}

func TestSSMCacheIsBounded(t *testing.T) {
	e := newEnv(t, tenantres.SSMOptions{MaxEntries: 2})
	for _, id := range []string{"tnt_1", "tnt_2", "tnt_3", "tnt_3", "tnt_2"} {
		e.resolve(t, id)
	}
	if n := e.ssm.calls(); n != 3 {
		t.Fatalf("%d calls, want 3 (two cached)", n)
	}
	e.resolve(t, "tnt_1") // evicted
	if n := e.ssm.calls(); n != 4 {
		t.Fatalf("%d calls, want 4: the least recently used tenant was evicted", n)
	}
}

// Tenant ids that cannot name a parameter never reach SSM; none panics.
func TestSSMBadTenantIDs(t *testing.T) {
	e := newEnv(t, tenantres.SSMOptions{})
	for _, ns := range []string{"", "_operator", "_platform"} {
		if r, err := e.res.Resources(context.Background(), ns); err != nil || r.Found {
			t.Fatalf("namespace %q: %+v, %v; want not found (not a tenant)", ns, r, err)
		}
	}
	for _, id := range []string{"a/b", "../tnt_1", "tnt 1", "tnt\x00", "tnt_é", strings.Repeat("x", 129), "/"} {
		_, err := e.res.Resources(context.Background(), id)
		if !errors.Is(err, tenantres.ErrInvalidTenantID) {
			t.Errorf("tenant id %q: err = %v, want ErrInvalidTenantID", id, err)
		}
	}
	if n := e.ssm.calls(); n != 0 {
		t.Fatalf("%d calls for bad tenant ids", n)
	}
}

func TestNewSSMChecksItsArguments(t *testing.T) {
	client := ssm.New(ssm.Options{Region: ssmRegion})
	if _, err := tenantres.NewSSM(client, "switchboard/tenants", tenantres.SSMOptions{}); err == nil {
		t.Error("a path without slashes accepted")
	}
	if _, err := tenantres.NewSSM(nil, path, tenantres.SSMOptions{}); err == nil {
		t.Error("no client accepted")
	}
}
