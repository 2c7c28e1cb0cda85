package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"
)

// The test binary shares one jsii (node) process, started by the first CDK
// call, and synthesizes each fixture once.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	jsii.Close()
	os.Exit(code)
}

var tempDirs []string

// tempDir is a directory that lives as long as the test binary.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "switchboard-infra-")
	if err != nil {
		t.Fatal(err)
	}
	tempDirs = append(tempDirs, d)
	return d
}

// cdkJSON is the parsed top-level cdk.json.
type cdkJSON struct {
	App     string         `json:"app"`
	Output  string         `json:"output"`
	Context map[string]any `json:"context"`
}

func readCDKJSON(t *testing.T) cdkJSON {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cdk.json"))
	if err != nil {
		t.Fatalf("read cdk.json: %v", err)
	}
	var c cdkJSON
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("parse cdk.json: %v", err)
	}
	return c
}

// newApp is an App with cdk.json's context (so the feature flags match
// `cdk synth`) plus extra, writing into outdir (a temp dir when empty).
func newApp(t *testing.T, extra map[string]any, outdir string) awscdk.App {
	t.Helper()
	ctx := map[string]any{}
	for k, v := range readCDKJSON(t).Context {
		ctx[k] = v
	}
	for k, v := range extra {
		ctx[k] = v
	}
	if outdir == "" {
		outdir = t.TempDir()
	}
	return awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(outdir)})
}

// fakeBootstrapDir stands in for `make build-lambda`'s output: dir/fn with
// only the bootstrap file (the whole directory becomes the asset).
func fakeBootstrapDir(t *testing.T, dir string) string {
	t.Helper()
	dir = filepath.Join(dir, "fn")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, BootstrapFile), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatalf("write fake bootstrap: %v", err)
	}
	return dir
}

const testKeyHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // sha256("test")

// The fixture tenants: one siloed, one pooled.
const (
	siloedID = "tnt_01K94G2D9E4H7J2K5M8N1P3Q6R"
	pooledID = "tnt_01K94G2DAC7D0E3F6G9H2J5K8M"
)

var testManifest = fmt.Sprintf(`{"tenants":[
  {"id":%q,"name":"Acme Health","tier":"siloed"},
  {"id":%q,"name":"Beta Clinic","tier":"pooled"}
]}`, siloedID, pooledID)

// fixture is one synthesized app: the stack, its template and its nested
// stacks' templates, and the cdk-nag findings left unsuppressed.
type fixture struct {
	cfg     Config
	sb      *Switchboard
	main    tmpl
	nested  map[string]tmpl // by tenant id
	nagErrs []string
}

var (
	awsOnce, localOnce sync.Once
	awsFix, localFix   *fixture
	awsErr, localErr   any
)

// awsFixture is the default (AWS) shape: HTTP API, retained data, an
// operator key hash, an alarm email, and the test manifest given through
// context tenantsManifest.
func awsFixture(t *testing.T) *fixture {
	t.Helper()
	awsOnce.Do(func() {
		defer func() { awsErr = recover() }()
		dir := tempDir(t)
		manifest := filepath.Join(dir, "tenants.json")
		if err := os.WriteFile(manifest, []byte(testManifest), 0o644); err != nil {
			panic(err)
		}
		awsFix = synthFixture(t, map[string]any{
			CtxBootstrapDir:      fakeBootstrapDir(t, dir),
			CtxOperatorKeySHA256: testKeyHash,
			CtxAlarmEmail:        "ops@example.com",
			CtxTenantsManifest:   manifest,
		}, filepath.Join(dir, "cdk.out"))
	})
	if awsErr != nil || awsFix == nil {
		t.Fatalf("aws fixture: %v (nil: its setup failed in an earlier test)", awsErr)
	}
	return awsFix
}

// localFixture is what the LocalStack kit deploys: the REST API, throw-away
// data, a public URL template, no tenants (the shipped manifest).
func localFixture(t *testing.T) *fixture {
	t.Helper()
	localOnce.Do(func() {
		defer func() { localErr = recover() }()
		dir := tempDir(t)
		localFix = synthFixture(t, map[string]any{
			CtxBootstrapDir:      fakeBootstrapDir(t, dir),
			CtxHTTPAPI:           "false",
			CtxRemovalPolicy:     "destroy",
			CtxPublicURL:         "http://{apiId}.execute-api.localhost.localstack.cloud:4566/prod",
			CtxNamePrefix:        "sb-dev",
			CtxOperatorKeySHA256: "",
			CtxTenantsManifest:   filepath.Join("..", DefaultTenantsManifest),
		}, filepath.Join(dir, "cdk.out"))
	})
	if localErr != nil || localFix == nil {
		t.Fatalf("localstack fixture: %v (nil: its setup failed in an earlier test)", localErr)
	}
	return localFix
}

// synthFixture builds the app as main does (config from context, manifest,
// stack, cdk-nag) and synthesizes it once.
func synthFixture(t *testing.T, ctx map[string]any, outdir string) *fixture {
	app := newApp(t, ctx, outdir)
	cfg, err := ConfigFromContext(app.Node())
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		panic(err)
	}
	m, err := LoadTenantsManifest(cfg.TenantsManifest)
	if err != nil {
		panic(err)
	}
	sb := NewSwitchboardStack(app, StackID, &SwitchboardStackProps{Config: cfg, Tenants: m})
	ApplyNag(app)
	app.Synth(nil)
	f := &fixture{cfg: cfg, sb: sb, main: newTmpl(assertions.Template_FromStack(sb.Stack, nil)), nested: map[string]tmpl{}}
	for i, ts := range sb.Tenants {
		f.nested[m.Siloed()[i].ID] = newTmpl(assertions.Template_FromStack(ts.Stack, nil))
	}
	f.nagErrs = nagFindings(sb.Stack)
	return f
}

// nagFindings are the AwsSolutions errors and warnings on stack and its
// nested stacks (their annotations are reported on the parent), as
// "<path>: <message>".
func nagFindings(stack awscdk.Stack) []string {
	an := assertions.Annotations_FromStack(stack)
	rule := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	var out []string
	for _, msgs := range []*[]*cxapi.SynthesisMessage{
		an.FindError(jsii.String("*"), rule),
		an.FindWarning(jsii.String("*"), rule),
	} {
		for _, m := range *msgs {
			out = append(out, fmt.Sprintf("%s: %v", *m.Id, m.Entry.Data))
		}
	}
	sort.Strings(out)
	return out
}

// tmpl is a synthesized template as JSON plus the assertions handle.
type tmpl struct {
	a   assertions.Template
	doc map[string]any
}

func newTmpl(a assertions.Template) tmpl { return tmpl{a: a, doc: *a.ToJSON()} }

func (tp tmpl) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tp.doc["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == typ {
			out[id] = res
		}
	}
	return out
}

// props returns the properties of every resource of typ that match (nil: all).
func (tp tmpl) props(typ string, match func(props map[string]any) bool) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tp.resources(typ) {
		p, _ := r["Properties"].(map[string]any)
		if match == nil || match(p) {
			out[id] = p
		}
	}
	return out
}

// only returns the logical id and properties of the single resource of typ
// whose properties match (nil: any).
func (tp tmpl) only(t *testing.T, typ string, match func(props map[string]any) bool) (string, map[string]any) {
	t.Helper()
	found := tp.props(typ, match)
	if len(found) != 1 {
		t.Fatalf("want exactly one matching %s, got %v", typ, keys(found))
	}
	for id, p := range found {
		return id, p
	}
	return "", nil
}

func (tp tmpl) resource(t *testing.T, id string) map[string]any {
	t.Helper()
	r, ok := tp.doc["Resources"].(map[string]any)[id].(map[string]any)
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	return r
}

// jsiiOK runs a CDK assertion, turning its panic into a test error.
func jsiiOK(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

// eq compares after a JSON round trip, so Go literals compare to template values.
func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(norm(t, got), norm(t, want)) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s:\n got  %s\n want %s", what, g, w)
	}
}

func norm(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return out
}

// jsonString is v as compact JSON (to search a policy or a dashboard body).
func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func ref(id string) map[string]any          { return map[string]any{"Ref": id} }
func getAtt(id, attr string) map[string]any { return map[string]any{"Fn::GetAtt": []any{id, attr}} }

func byName(key string, value any) func(map[string]any) bool {
	return func(p map[string]any) bool { return p[key] == value }
}

func pick(m map[string]any, ks ...string) map[string]any {
	out := map[string]any{}
	for _, k := range ks {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// statements are the statements of every policy document under v (IAM
// policies, key policies, queue and topic policies), with where they are.
func statements(v any, where string, out map[string][]map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		if st, ok := x["Statement"].([]any); ok {
			for _, s := range st {
				if m, ok := s.(map[string]any); ok {
					out[where] = append(out[where], m)
				}
			}
		}
		for k, c := range x {
			statements(c, where+"/"+k, out)
		}
	case []any:
		for i, c := range x {
			statements(c, fmt.Sprintf("%s[%d]", where, i), out)
		}
	}
}

// strs is a statement's Action or Resource as strings (intrinsics as JSON).
func strs(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, strs(e)...)
		}
		return out
	default:
		b, _ := json.Marshal(x)
		return []string{string(b)}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// envVars is a function's environment.
func envVars(fn map[string]any) map[string]any {
	return fn["Environment"].(map[string]any)["Variables"].(map[string]any)
}

func hasPrefix(list []string, prefix string) bool {
	for _, e := range list {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}
