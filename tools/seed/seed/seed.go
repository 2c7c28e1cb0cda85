// Package seed creates Switchboard's demo data over the public API: two
// pooled and two siloed tenants, each with the scopes Global (the root) >
// EU > France and Global > US, a service account of every built-in role at
// the root and at EU with an API key each, and a sandbox SMS channel in
// France and in US. It prints every id and key, and ready-to-run curl lines
// that show the access rules.
//
// Every command carries an Idempotency-Key derived from the prefix and the
// entity, so a run again with the same prefix (within the server's
// idempotency window, 24 hours) replays the first run's answers, keys
// included, and creates nothing new.
package seed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// ActiveTimeout is how long Seed waits for a new tenant to become active.
var ActiveTimeout = 30 * time.Second

// Roles are the built-in roles, each given to one account at the root and
// one at EU.
var Roles = []string{"admin", "sender", "viewer"}

// Result is what Seed created (or replayed).
type Result struct {
	Prefix   string
	Tenants  []Tenant
	Examples []Example
	Commands int // commands sent
	Replayed int // of which answered Idempotent-Replayed: true
}

// Tenant is one seeded tenant.
type Tenant struct {
	Name     string
	Tier     string
	TenantID string
	Status   string
	Scopes   []Scope   // root, EU, France, US
	Accounts []Account // the onboarding admin first, then Global and EU accounts per role
	Channels []Channel // France, US
}

// Scope is one scope of a seeded tenant.
type Scope struct {
	Label    string // Global, EU, France, US
	Name     string // the scope's name in the API ("root" for the root)
	ScopeID  string
	ParentID string
	Path     string // labels from the root: "Global > EU > France"
}

// Account is a service account with its API key.
type Account struct {
	Name             string
	Role             string
	ScopeID          string
	ScopePath        string
	ServiceAccountID string
	APIKeyID         string
	APIKey           string
}

// Channel is a sandbox SMS channel.
type Channel struct {
	Name      string
	ChannelID string
	ScopeID   string
	ScopePath string
	From      string
}

// Example is one printed curl line and the status it answers.
type Example struct {
	Title  string
	Path   string // /commands/... or /queries/...
	APIKey string
	Body   string
	Want   int
	Curl   string
}

// APIError is a non-2xx answer (or no answer) of a step.
type APIError struct {
	Step         string
	Status       int    // 0: no answer
	Code         string // problem+json code
	Detail       string
	InvocationID string
	Hint         string
	Err          error // transport error when Status is 0
}

func (e *APIError) Error() string {
	var b strings.Builder
	if e.Status == 0 {
		fmt.Fprintf(&b, "%s: %v", e.Step, e.Err)
	} else {
		fmt.Fprintf(&b, "%s: %d %s", e.Step, e.Status, e.Code)
		if e.Detail != "" {
			fmt.Fprintf(&b, ": %s", e.Detail)
		}
		if e.InvocationID != "" {
			fmt.Fprintf(&b, " (invocation %s)", e.InvocationID)
		}
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "\n  what to do: %s", e.Hint)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

type seeder struct {
	ctx    context.Context
	client *http.Client
	base   string
	opKey  string
	prefix string
	out    io.Writer
	res    *Result
}

// Seed creates the demo data on the server at baseURL with the operator key,
// printing progress and then the tables and examples to out. Tenant names
// start with prefix; the Idempotency-Keys derive from it.
func Seed(ctx context.Context, client *http.Client, baseURL, operatorKey, prefix string, out io.Writer) (Result, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if prefix = strings.TrimSpace(prefix); prefix == "" {
		prefix = "Demo"
	}
	res := Result{Prefix: prefix}
	s := &seeder{ctx: ctx, client: client, base: strings.TrimRight(baseURL, "/"), opKey: operatorKey, prefix: prefix, out: out, res: &res}
	if operatorKey == "" {
		return res, &APIError{Step: "operator key", Err: errors.New("none given"),
			Hint: "pass -operator-key or SWITCHBOARD_OPERATOR_KEY, or run from the directory whose .data/operator.key local mode uses (make seed does)"}
	}
	if err := s.health(); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "Seeding demo data on %s (prefix %q)\n", s.base, prefix)
	tenants := []struct{ name, tier string }{
		{prefix + " Pooled A", "pooled"}, {prefix + " Pooled B", "pooled"},
		{prefix + " Siloed A", "siloed"}, {prefix + " Siloed B", "siloed"},
	}
	for i, t := range tenants {
		fmt.Fprintf(out, "[%d/%d] %s (%s):", i+1, len(tenants), t.name, t.tier)
		tn, err := s.tenant(t.name, t.tier)
		if err != nil {
			fmt.Fprintln(out, " failed")
			return res, err
		}
		res.Tenants = append(res.Tenants, tn)
	}
	res.Examples = examples(s.base, res.Tenants[0])
	s.print()
	return res, nil
}

func (s *seeder) health() error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, s.base+"/healthz", nil)
	if err != nil {
		return &APIError{Step: "health check", Err: err, Hint: "check the base URL (-url or SWITCHBOARD_URL)"}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return &APIError{Step: "health check " + s.base + "/healthz", Err: err,
			Hint: "is local mode running? Start it with `make run` in another terminal (or set SWITCHBOARD_URL)"}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &APIError{Step: "health check " + s.base + "/healthz", Status: resp.StatusCode, Code: resp.Status,
			Hint: "is this Switchboard local mode? Start it with `make run`"}
	}
	return nil
}

// tenant seeds one tenant and prints its progress on the current line.
func (s *seeder) tenant(name, tier string) (Tenant, error) {
	t := Tenant{Name: name, Tier: tier}
	slug := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, s.prefix+" "), " ", "-"))
	idem := func(entity string) string { return s.idemKey(slug, entity) }

	var on struct{ TenantID, RootScopeID, ServiceAccountID, APIKeyID, APIKey string }
	replayedBefore := s.res.Replayed
	if err := s.post("onboard tenant "+name, "/commands/onboard-tenant", s.opKey, idem("tenant"),
		map[string]any{"name": name, "tier": tier}, &on); err != nil {
		return t, err
	}
	t.TenantID = on.TenantID
	admin := on.APIKey
	fmt.Fprintf(s.out, " onboarded %s", on.TenantID)
	if s.res.Replayed > replayedBefore {
		fmt.Fprint(s.out, " (replayed)")
	}

	// Wait until provisioning ran.
	start := time.Now()
	for {
		var got struct{ Status, RootScopeID string }
		if err := s.post("get-tenant "+name, "/queries/get-tenant", admin, "", map[string]any{}, &got); err != nil {
			return t, err
		}
		t.Status = got.Status
		if got.Status == "active" {
			break
		}
		if time.Since(start) > ActiveTimeout {
			return t, &APIError{Step: "wait for tenant " + name + " to become active", Err: fmt.Errorf("still %q after %s", got.Status, ActiveTimeout),
				Hint: "provisioning runs as background work: is the server's worker running (SWITCHBOARD_WORKERS=0 pauses it)? Its log says why; run make seed again to continue"}
		}
		select {
		case <-s.ctx.Done():
			return t, s.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Fprintf(s.out, ", active")

	// Scopes: the root is Global.
	root := Scope{Label: "Global", Name: "root", ScopeID: on.RootScopeID, Path: "Global"}
	t.Scopes = append(t.Scopes, root)
	mk := func(label string, parent Scope) (Scope, error) {
		var out struct{ ScopeID string }
		if err := s.post("create scope "+label+" in "+name, "/commands/create-scope", admin, idem("scope-"+label),
			map[string]any{"parentScopeId": parent.ScopeID, "name": label}, &out); err != nil {
			return Scope{}, err
		}
		sc := Scope{Label: label, Name: label, ScopeID: out.ScopeID, ParentID: parent.ScopeID, Path: parent.Path + " > " + label}
		t.Scopes = append(t.Scopes, sc)
		return sc, nil
	}
	eu, err := mk("EU", root)
	if err != nil {
		return t, err
	}
	france, err := mk("France", eu)
	if err != nil {
		return t, err
	}
	us, err := mk("US", root)
	if err != nil {
		return t, err
	}
	fmt.Fprintf(s.out, ", scopes")

	// Service accounts and keys.
	t.Accounts = append(t.Accounts, Account{Name: "admin", Role: "admin", ScopeID: root.ScopeID, ScopePath: root.Path,
		ServiceAccountID: on.ServiceAccountID, APIKeyID: on.APIKeyID, APIKey: on.APIKey})
	for _, at := range []Scope{root, eu} {
		for _, role := range Roles {
			acc := Account{Name: strings.ToLower(at.Label) + "-" + role, Role: role, ScopeID: at.ScopeID, ScopePath: at.Path}
			var sva struct{ ServiceAccountID string }
			if err := s.post("create service account "+acc.Name+" in "+name, "/commands/create-service-account", admin, idem("sva-"+acc.Name),
				map[string]any{"scopeId": at.ScopeID, "name": acc.Name, "role": role}, &sva); err != nil {
				return t, err
			}
			acc.ServiceAccountID = sva.ServiceAccountID
			var key struct{ APIKeyID, APIKey string }
			if err := s.post("issue API key of "+acc.Name+" in "+name, "/commands/issue-api-key", admin, idem("key-"+acc.Name),
				map[string]any{"serviceAccountId": acc.ServiceAccountID, "name": "demo"}, &key); err != nil {
				return t, err
			}
			acc.APIKeyID, acc.APIKey = key.APIKeyID, key.APIKey
			t.Accounts = append(t.Accounts, acc)
		}
	}
	fmt.Fprintf(s.out, ", %d service accounts with keys", len(t.Accounts)-1)

	// Sandbox SMS channels in France and US.
	for _, c := range []struct {
		at   Scope
		from string
	}{{france, "+33700000001"}, {us, "+15550000001"}} {
		ch := Channel{Name: "SMS " + c.at.Label, ScopeID: c.at.ScopeID, ScopePath: c.at.Path, From: c.from}
		var out struct{ ChannelID string }
		if err := s.post("create channel "+ch.Name+" in "+name, "/commands/create-channel", admin, idem("channel-"+c.at.Label),
			map[string]any{"scopeId": c.at.ScopeID, "name": ch.Name, "type": "sms", "provider": "sandbox", "from": c.from}, &out); err != nil {
			return t, err
		}
		ch.ChannelID = out.ChannelID
		t.Channels = append(t.Channels, ch)
	}
	fmt.Fprintf(s.out, ", channels. done\n")
	return t, nil
}

// idemKey derives a command's Idempotency-Key from the prefix, the tenant
// and the entity: printable ASCII, at most 255 characters.
func (s *seeder) idemKey(tenant, entity string) string {
	k := "seed-" + url.QueryEscape(s.prefix) + "-" + tenant + "-" + entity
	if len(k) > 200 {
		sum := sha256.Sum256([]byte(s.prefix))
		k = "seed-" + hex.EncodeToString(sum[:16]) + "-" + tenant + "-" + entity
	}
	return k
}

type problem struct {
	Code         string `json:"code"`
	Title        string `json:"title"`
	Detail       string `json:"detail"`
	InvocationID string `json:"invocationId"`
}

// post sends one command or query; a non-2xx answer is an *APIError.
func (s *seeder) post(step, path, key, idemKey string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return &APIError{Step: step, Err: err}
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.base+path, bytes.NewReader(raw))
	if err != nil {
		return &APIError{Step: step, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return &APIError{Step: step, Err: err, Hint: "is local mode running? Start it with `make run` in another terminal"}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &APIError{Step: step, Status: resp.StatusCode, Err: err}
	}
	if strings.HasPrefix(path, "/commands/") {
		s.res.Commands++
		if resp.Header.Get("Idempotent-Replayed") == "true" {
			s.res.Replayed++
		}
	}
	if resp.StatusCode/100 != 2 {
		var p problem
		_ = json.Unmarshal(data, &p)
		if p.Code == "" {
			p.Code = http.StatusText(resp.StatusCode)
			p.Detail = strings.TrimSpace(string(data))
		}
		if p.Detail == "" {
			p.Detail = p.Title
		}
		return &APIError{Step: step, Status: resp.StatusCode, Code: p.Code, Detail: p.Detail, InvocationID: p.InvocationID,
			Hint: hint(path, resp.StatusCode, p.Code)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return &APIError{Step: step, Status: resp.StatusCode, Err: fmt.Errorf("decode answer: %w", err), Detail: string(data)}
		}
	}
	return nil
}

func hint(path string, status int, code string) string {
	switch {
	case path == "/commands/onboard-tenant" && status == http.StatusUnauthorized:
		return "the operator key is not this server's: use the key local mode printed at start (its data dir's operator.key), via -operator-key or SWITCHBOARD_OPERATOR_KEY"
	case path == "/commands/onboard-tenant" && status == http.StatusServiceUnavailable:
		return "the server has no operator key configured: start local mode with `make run`, which generates one"
	case status == http.StatusUnprocessableEntity:
		return "this prefix was seeded before with other content (an older seed tool?): run again with another prefix, e.g. SEED_PREFIX=Demo2 make seed"
	case status == http.StatusTooManyRequests:
		return "the server is rate limiting: wait a moment and run make seed again (a re-run with the same prefix continues where this one stopped)"
	case status >= 500:
		return "a server-side failure: see the server's log for the invocation id; a re-run with the same prefix continues where this one stopped"
	default:
		return "see the detail; a re-run with the same prefix replays what succeeded and continues"
	}
}

// examples are the access-rule demonstrations, on the first tenant.
func examples(base string, t Tenant) []Example {
	acc := func(name string) Account {
		for _, a := range t.Accounts {
			if a.Name == name {
				return a
			}
		}
		return Account{}
	}
	france, us := t.Channels[0], t.Channels[1]
	send := func(ch Channel, text string) string {
		b, _ := json.Marshal(map[string]any{"channelId": ch.ChannelID, "to": "+15551234567", "content": map[string]string{"text": text}})
		return string(b)
	}
	ex := []Example{
		{Title: "eu-sender sends through the France channel (France is below EU): 202", Path: "/commands/send-message",
			APIKey: acc("eu-sender").APIKey, Body: send(france, "Bonjour from the EU sender"), Want: http.StatusAccepted},
		{Title: "eu-sender tries the US channel (US is not below EU): 403", Path: "/commands/send-message",
			APIKey: acc("eu-sender").APIKey, Body: send(us, "Hello from the EU sender"), Want: http.StatusForbidden},
		{Title: "eu-viewer tries to send (a viewer only reads): 403", Path: "/commands/send-message",
			APIKey: acc("eu-viewer").APIKey, Body: send(france, "Hello from the EU viewer"), Want: http.StatusForbidden},
		{Title: "global-admin lists every scope: 200", Path: "/queries/list-scopes",
			APIKey: acc("global-admin").APIKey, Body: `{}`, Want: http.StatusOK},
	}
	for i := range ex {
		ex[i].Curl = fmt.Sprintf("curl -s -w '\\n%%{http_code}\\n' %s%s \\\n  -H 'Authorization: Bearer %s' \\\n  -H 'Content-Type: application/json' -d '%s'",
			base, ex[i].Path, ex[i].APIKey, ex[i].Body)
	}
	return ex
}

func (s *seeder) print() {
	out := s.out
	for _, t := range s.res.Tenants {
		fmt.Fprintf(out, "\n== %s  tenant %s  tier %s  status %s\n", t.Name, t.TenantID, t.Tier, t.Status)
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  SCOPE\tID\tPATH")
		for _, sc := range t.Scopes {
			name := sc.Name
			if sc.ParentID == "" {
				name = `root ("Global")`
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\n", name, sc.ScopeID, sc.Path)
		}
		w.Flush()
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  SERVICE ACCOUNT\tROLE\tAT\tID\tAPI KEY")
		for _, a := range t.Accounts {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", a.Name, a.Role, a.ScopePath, a.ServiceAccountID, a.APIKey)
		}
		w.Flush()
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  CHANNEL\tID\tIN\tFROM")
		for _, c := range t.Channels {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s (sms, sandbox)\n", c.Name, c.ChannelID, c.ScopePath, c.From)
		}
		w.Flush()
	}
	fmt.Fprintf(out, "\nTry the access rules (tenant %s; a role holds at its scope and every scope below it):\n", s.res.Tenants[0].Name)
	for _, e := range s.res.Examples {
		fmt.Fprintf(out, "\n# %s\n%s\n", e.Title, e.Curl)
	}
	fmt.Fprintln(out)
	switch {
	case s.res.Replayed == s.res.Commands:
		fmt.Fprintf(out, "Every one of the %d commands replayed an earlier run with prefix %q (Idempotency-Keys): nothing new was created, the keys above are that run's.\n", s.res.Commands, s.prefix)
		fmt.Fprintln(out, "For a fresh set, use another prefix: SEED_PREFIX=Demo2 make seed")
	case s.res.Replayed > 0:
		fmt.Fprintf(out, "%d of the %d commands replayed an earlier (partial) run with prefix %q; the rest were new.\n", s.res.Replayed, s.res.Commands, s.prefix)
	default:
		fmt.Fprintf(out, "Created %d tenants with %d commands. API keys are shown only here: keep them. Running make seed again with the same prefix replays this run (within 24 hours); SEED_PREFIX=Demo2 make seed makes a fresh set.\n", len(s.res.Tenants), s.res.Commands)
	}
}
