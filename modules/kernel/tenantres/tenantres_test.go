package tenantres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
)

func TestParse(t *testing.T) {
	got, err := tenantres.Parse(siloedA)
	if err != nil || got != wantA {
		t.Fatalf("Parse(siloed) = %+v, %v", got, err)
	}
	// Members the contract does not name are ignored; so are a pooled
	// parameter's queue and key.
	got, err = tenantres.Parse(`{"tier":"siloed","workQueueUrl":"` + queueA + `","kmsKeyArn":"` + keyA + `","dlqUrl":"x"}`)
	if err != nil || got != wantA {
		t.Fatalf("Parse(extra member) = %+v, %v", got, err)
	}
	got, err = tenantres.Parse(`{"tier":"pooled","workQueueUrl":"` + queueA + `"}`)
	if err != nil || got != (tenantres.Resources{Found: true, Tier: tenantres.TierPooled}) || got.Siloed() {
		t.Fatalf("Parse(pooled) = %+v, %v", got, err)
	}
	if v := tenantres.Format(wantA); v != siloedA {
		t.Fatalf("Format = %s, want %s", v, siloedA)
	}
	for _, bad := range []string{
		``, `null`, `[]`, `{`, `"siloed"`,
		`{"tier":"dedicated","workQueueUrl":"` + queueA + `","kmsKeyArn":"` + keyA + `"}`,
		`{"tier":"siloed","kmsKeyArn":"` + keyA + `"}`,
		`{"tier":"siloed","workQueueUrl":"` + queueA + `"}`,
		`{"tier":"siloed","workQueueUrl":"sqs/queue","kmsKeyArn":"` + keyA + `"}`,
		`{"tier":"siloed","workQueueUrl":"ftp://q","kmsKeyArn":"` + keyA + `"}`,
		`{"tier":"siloed","workQueueUrl":"` + queueA + `","kmsKeyArn":"alias/tenant"}`,
		`{"tier":"siloed","workQueueUrl":"` + queueA + `","kmsKeyArn":"arn:aws:kms: x"}`,
		`{"tier":1}`,
		`{"tier":"siloed","workQueueUrl":"` + queueA + `","kmsKeyArn":"` + keyA + `","pad":"` + strings.Repeat("x", 4096) + `"}`,
	} {
		if r, err := tenantres.Parse(bad); !errors.Is(err, tenantres.ErrMalformed) || r.Found {
			t.Errorf("Parse(%.60q) = %+v, %v; want ErrMalformed", bad, r, err)
		}
	}
}

func TestValidatePath(t *testing.T) {
	for _, ok := range []string{"/", "/switchboard/tenants/", "/prod_1/switchboard.v2/tenants-x/"} {
		if err := tenantres.ValidatePath(ok); err != nil {
			t.Errorf("ValidatePath(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "switchboard/tenants/", "/switchboard/tenants", "//", "/a//b/", "/a b/", "/a/ü/",
		"/aws/tenants/", "/SSM/x/", "/awsome/", "/" + strings.Repeat("a", 900) + "/"} {
		if err := tenantres.ValidatePath(bad); err == nil {
			t.Errorf("ValidatePath(%q) accepted", bad)
		}
	}
}

// Static: the zero value is empty; Set and Delete take effect at once.
func TestStatic(t *testing.T) {
	ctx := context.Background()
	var empty tenantres.Static
	if r, err := empty.Resources(ctx, tenantA); err != nil || r.Found {
		t.Fatalf("zero Static: %+v, %v", r, err)
	}
	s := tenantres.NewStatic(map[string]tenantres.Resources{tenantA: {Tier: tenantres.TierSiloed, WorkQueueURL: queueA, KMSKeyARN: keyA}})
	if r, err := s.Resources(ctx, tenantA); err != nil || r != wantA {
		t.Fatalf("Static(A) = %+v, %v", r, err)
	}
	if r, _ := s.Resources(ctx, tenantB); r.Found {
		t.Fatalf("Static(B) = %+v", r)
	}
	s.Set(tenantB, tenantres.Resources{Tier: tenantres.TierPooled})
	if r, _ := s.Resources(ctx, tenantB); !r.Found || r.Siloed() {
		t.Fatalf("after Set: %+v", r)
	}
	s.Delete(tenantA)
	if r, _ := s.Resources(ctx, tenantA); r.Found {
		t.Fatalf("after Delete: %+v", r)
	}
}
