package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets/kmstest"
	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
)

const testKeyID = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func TestKMSKeyringProtocol(t *testing.T) {
	ctx := context.Background()
	srv := kmstest.NewServer()
	defer srv.Close()
	kr := secrets.NewKMSKeyring(srv.Client(), testKeyID)

	pt, wrapped, err := kr.GenerateDataKey(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(pt) != 32 || len(wrapped) == 0 {
		t.Fatalf("got %d-byte key, %d-byte blob", len(pt), len(wrapped))
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Operation != kmstest.OpGenerateDataKey || r.KeyID != testKeyID || r.KeySpec != "AES_256" || r.NumberOfBytes != 0 {
		t.Fatalf("GenerateDataKey request = %+v", r)
	}
	wantEC := map[string]string{"tenantId": "tenant-a", "purpose": "switchboard-data-key"}
	if fmt.Sprint(r.EncryptionContext) != fmt.Sprint(wantEC) {
		t.Fatalf("encryption context = %v, want %v", r.EncryptionContext, wantEC)
	}

	got, err := kr.DecryptDataKey(ctx, "tenant-a", wrapped)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Decrypt: %v", err)
	}
	r = srv.Requests()[1]
	if r.Operation != kmstest.OpDecrypt || r.KeyID != testKeyID || fmt.Sprint(r.EncryptionContext) != fmt.Sprint(wantEC) {
		t.Fatalf("Decrypt request = %+v", r)
	}

	// Another tenant's encryption context: KMS says InvalidCiphertextException.
	_, err = kr.DecryptDataKey(ctx, "tenant-b", wrapped)
	var invalid *types.InvalidCiphertextException
	if !errors.Is(err, secrets.ErrDecrypt) || !errors.As(err, &invalid) {
		t.Fatalf("other tenant: err = %v, want ErrDecrypt wrapping InvalidCiphertextException", err)
	}
	// The shared key was replaced: the keyring names its key first
	// (IncorrectKeyException), then lets KMS use the key the ciphertext names.
	got, err = secrets.NewKMSKeyring(srv.Client(), "alias/other").DecryptDataKey(ctx, "tenant-a", wrapped)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("replaced shared key: %v", err)
	}
	reqs = srv.Requests()
	if len(reqs) != 5 || reqs[3].KeyID != "alias/other" || reqs[4].KeyID != "" || fmt.Sprint(reqs[4].EncryptionContext) != fmt.Sprint(wantEC) {
		t.Fatalf("requests after the key was replaced: %+v, want alias/other, then no KeyId", reqs[3:])
	}
	if g, d := srv.Calls(kmstest.OpGenerateDataKey), srv.Calls(kmstest.OpDecrypt); g != 1 || d != 4 {
		t.Fatalf("calls: GenerateDataKey %d, Decrypt %d; want 1, 4", g, d)
	}
}

func TestEnvelopeOverKMS(t *testing.T) {
	ctx := context.Background()
	srv := kmstest.NewServer()
	defer srv.Close()

	e1 := secrets.NewEnvelope(secrets.NewKMSKeyring(srv.Client(), testKeyID))
	var blobs [][]byte
	for i := 0; i < 20; i++ {
		b, err := e1.Seal(ctx, "tenant-a", "webhook", []byte(fmt.Sprint("secret-", i)))
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	for i, b := range blobs {
		got, err := e1.Open(ctx, "tenant-a", "webhook", b)
		if err != nil || string(got) != fmt.Sprint("secret-", i) {
			t.Fatalf("e1 open %d: %q, %v", i, got, err)
		}
	}
	if g, d := srv.Calls(kmstest.OpGenerateDataKey), srv.Calls(kmstest.OpDecrypt); g != 1 || d != 0 {
		t.Fatalf("after 20 seals+opens: GenerateDataKey %d, Decrypt %d; want 1, 0", g, d)
	}

	// A new Lambda instance: one Decrypt, then the cache.
	e2 := secrets.NewEnvelope(secrets.NewKMSKeyring(srv.Client(), testKeyID))
	for i, b := range blobs {
		got, err := e2.Open(ctx, "tenant-a", "webhook", b)
		if err != nil || string(got) != fmt.Sprint("secret-", i) {
			t.Fatalf("e2 open %d: %q, %v", i, got, err)
		}
	}
	if d := srv.Calls(kmstest.OpDecrypt); d != 1 {
		t.Fatalf("Decrypt called %d times by the second envelope, want 1", d)
	}

	// Wrong tenant, wrong purpose, tampered wrapped key: ErrDecrypt.
	e3 := secrets.NewEnvelope(secrets.NewKMSKeyring(srv.Client(), testKeyID))
	if _, err := e3.Open(ctx, "tenant-b", "webhook", blobs[0]); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("wrong tenant: err = %v", err)
	}
	if _, err := e2.Open(ctx, "tenant-a", "other", blobs[0]); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("wrong purpose: err = %v", err)
	}
	tampered := bytes.Clone(blobs[0])
	tampered[10] ^= 0x01 // inside the wrapped key
	if _, err := e3.Open(ctx, "tenant-a", "webhook", tampered); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("tampered wrapped key: err = %v", err)
	}
}

func TestKMSUnavailableIsNotErrDecrypt(t *testing.T) {
	srv := kmstest.NewServer()
	blob, err := secrets.NewEnvelope(secrets.NewKMSKeyring(srv.Client(), testKeyID)).Seal(context.Background(), "t", "p", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	url := srv.URL
	srv.Close()
	client := kms.New(kms.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1,
	})
	_, err = secrets.NewEnvelope(secrets.NewKMSKeyring(client, testKeyID)).Open(context.Background(), "t", "p", blob)
	if err == nil || errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("err = %v, want a non-ErrDecrypt failure", err)
	}
}

func TestKMSKeyringNeedsKeyID(t *testing.T) {
	srv := kmstest.NewServer()
	defer srv.Close()
	if _, _, err := secrets.NewKMSKeyring(srv.Client(), "").GenerateDataKey(context.Background(), "t"); err == nil {
		t.Fatal("empty key id accepted")
	}
	if n := srv.Calls(kmstest.OpGenerateDataKey); n != 0 {
		t.Fatalf("%d requests sent without a key id", n)
	}
}

// Per-tenant KMS keys (tenantres).

const (
	tenantKeyA = "arn:aws:kms:us-east-1:111122223333:key/aaaaaaaa-12ab-34cd-56ef-1234567890ab"
	tenantKeyB = "arn:aws:kms:us-east-1:111122223333:key/bbbbbbbb-12ab-34cd-56ef-1234567890ab"
)

func siloed(key string) tenantres.Resources {
	return tenantres.Resources{Tier: tenantres.TierSiloed, WorkQueueURL: "https://sqs.us-east-1.amazonaws.com/111122223333/q", KMSKeyARN: key}
}

// decryptKeyIDs returns the KeyId of every Decrypt request from index from.
func decryptKeyIDs(srv *kmstest.Server, from int) []string {
	var out []string
	for _, r := range srv.Requests()[from:] {
		if r.Operation == kmstest.OpDecrypt {
			out = append(out, r.KeyID)
		}
	}
	return out
}

// A siloed tenant's data keys are made under its own KMS key; a pooled
// tenant's (and a tenant without a parameter) under the shared key.
func TestKMSKeyringUsesASiloedTenantsOwnKey(t *testing.T) {
	ctx := context.Background()
	srv := kmstest.NewServer()
	defer srv.Close()
	res := tenantres.NewStatic(map[string]tenantres.Resources{"tenant-a": siloed(tenantKeyA), "tenant-p": {Tier: tenantres.TierPooled}})
	kr := secrets.NewKMSKeyring(srv.Client(), testKeyID).WithResources(res, nil)

	pa, wa, err := kr.GenerateDataKey(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"tenant-p", "tenant-n"} {
		if _, _, err := kr.GenerateDataKey(ctx, tenant); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for _, r := range srv.Requests() {
		keys = append(keys, r.KeyID)
	}
	if want := []string{tenantKeyA, testKeyID, testKeyID}; fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("GenerateDataKey under %v, want %v", keys, want)
	}
	got, err := kr.DecryptDataKey(ctx, "tenant-a", wa)
	if err != nil || !bytes.Equal(got, pa) {
		t.Fatalf("decrypt: %v", err)
	}
	if ids := decryptKeyIDs(srv, 3); fmt.Sprint(ids) != fmt.Sprint([]string{tenantKeyA}) {
		t.Fatalf("Decrypt named %v, want the tenant's key alone", ids)
	}
}

// Data keys wrapped under the shared key before the tenant got its own key
// still open: the tenant's key first (IncorrectKeyException), then the shared
// key, both named. New data keys use the tenant's key.
func TestKMSKeyringOpensDataKeysWrappedBeforeTheTenantWasSiloed(t *testing.T) {
	ctx := context.Background()
	srv := kmstest.NewServer()
	defer srv.Close()
	res := tenantres.NewStatic(nil)
	before := secrets.NewEnvelope(secrets.NewKMSKeyring(srv.Client(), testKeyID).WithResources(res, nil))
	blob, err := before.Seal(ctx, "tenant-a", "webhook", []byte("sealed while pooled"))
	if err != nil {
		t.Fatal(err)
	}
	res.Set("tenant-a", siloed(tenantKeyA)) // the tenant's resources are deployed
	n := len(srv.Requests())
	after := secrets.NewEnvelope(secrets.NewKMSKeyring(srv.Client(), testKeyID).WithResources(res, nil))
	got, err := after.Open(ctx, "tenant-a", "webhook", blob)
	if err != nil || string(got) != "sealed while pooled" {
		t.Fatalf("open: %q, %v", got, err)
	}
	if ids := decryptKeyIDs(srv, n); fmt.Sprint(ids) != fmt.Sprint([]string{tenantKeyA, testKeyID}) {
		t.Fatalf("Decrypt named %v, want the tenant's key, then the shared key", ids)
	}
	if _, err := after.Seal(ctx, "tenant-a", "webhook", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if r := srv.Requests()[len(srv.Requests())-1]; r.Operation != kmstest.OpGenerateDataKey || r.KeyID != tenantKeyA {
		t.Fatalf("new data key: %+v, want one under the tenant's key", r)
	}
}

// The tenant's parameter was deleted (or names a new key): data keys wrapped
// under its old key still open through the key the ciphertext names, logged.
// Another tenant never opens them (the encryption context binds the tenant).
func TestKMSKeyringOpensDataKeysOfAKeyNoLongerNamed(t *testing.T) {
	ctx := context.Background()
	srv := kmstest.NewServer()
	defer srv.Close()
	res := tenantres.NewStatic(map[string]tenantres.Resources{"tenant-a": siloed(tenantKeyA), "tenant-b": siloed(tenantKeyB)})
	blob, err := secrets.NewEnvelope(secrets.NewKMSKeyring(srv.Client(), testKeyID).WithResources(res, nil)).Seal(ctx, "tenant-a", "p", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Delete("tenant-a")
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	n := len(srv.Requests())
	e := secrets.NewEnvelope(secrets.NewKMSKeyring(srv.Client(), testKeyID).WithResources(res, log))
	if got, err := e.Open(ctx, "tenant-a", "p", blob); err != nil || string(got) != "x" {
		t.Fatalf("open after the parameter was deleted: %q, %v", got, err)
	}
	if ids := decryptKeyIDs(srv, n); fmt.Sprint(ids) != fmt.Sprint([]string{testKeyID, ""}) {
		t.Fatalf("Decrypt named %v, want the shared key, then none", ids)
	}
	if !strings.Contains(logs.String(), tenantKeyA) || !strings.Contains(logs.String(), `"level":"WARN"`) {
		t.Fatalf("log %s, want a warning naming the key used", logs.String())
	}
	// Tenant b (siloed, its own key) never opens tenant a's data key.
	if _, err := e.Open(ctx, "tenant-b", "p", blob); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("other tenant: err = %v, want ErrDecrypt", err)
	}
}

type failingResolver struct{}

func (failingResolver) Resources(context.Context, string) (tenantres.Resources, error) {
	return tenantres.Resources{}, errors.New("ssm unavailable")
}

// When the resolver cannot tell, no data key is made (it might be a siloed
// tenant's, under the shared key): the seal fails and may be retried. Opening
// still works.
func TestKMSKeyringResolverFailure(t *testing.T) {
	ctx := context.Background()
	srv := kmstest.NewServer()
	defer srv.Close()
	blob, err := secrets.NewEnvelope(secrets.NewKMSKeyring(srv.Client(), testKeyID)).Seal(ctx, "tenant-a", "p", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	n := srv.Calls(kmstest.OpGenerateDataKey)
	e := secrets.NewEnvelope(secrets.NewKMSKeyring(srv.Client(), testKeyID).WithResources(failingResolver{}, nil))
	_, err = e.Seal(ctx, "tenant-a", "p", []byte("y"))
	if err == nil || errors.Is(err, secrets.ErrDecrypt) || !strings.Contains(err.Error(), "ssm unavailable") {
		t.Fatalf("seal: err = %v, want the resolver's error (not ErrDecrypt)", err)
	}
	if srv.Calls(kmstest.OpGenerateDataKey) != n {
		t.Fatal("a data key was made without knowing the tenant's key")
	}
	if got, err := e.Open(ctx, "tenant-a", "p", blob); err != nil || string(got) != "x" {
		t.Fatalf("open: %q, %v", got, err)
	}
}

// stubKMS answers Decrypt: IncorrectKeyException when a KeyId is named, last
// otherwise.
type stubKMS struct {
	secrets.KMSAPI
	last  error
	calls int
}

func (s *stubKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	s.calls++
	if in.KeyId != nil {
		return nil, &types.IncorrectKeyException{Message: aws.String("not this key")}
	}
	return nil, s.last
}

// The last attempt (the key the ciphertext names) failing: a key that is gone
// never opens (ErrDecrypt); throttling and a refusal may pass (not
// ErrDecrypt: a policy may still be on its way during a deploy).
func TestKMSKeyringLastAttemptFailures(t *testing.T) {
	for _, c := range []struct {
		err        error
		errDecrypt bool
	}{
		{&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}, false},
		{&types.NotFoundException{Message: aws.String("gone")}, true},
		{&types.InvalidCiphertextException{}, true},
		{&smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}, false},
		{&types.DisabledException{Message: aws.String("disabled")}, false},
	} {
		stub := &stubKMS{last: c.err}
		_, err := secrets.NewKMSKeyring(stub, testKeyID).DecryptDataKey(context.Background(), "tenant-a", []byte("blob"))
		if err == nil || errors.Is(err, secrets.ErrDecrypt) != c.errDecrypt || !errors.Is(err, c.err) {
			t.Errorf("%T %v: err = %v, want ErrDecrypt %v", c.err, c.err, err, c.errDecrypt)
		}
		if stub.calls != 2 {
			t.Errorf("%d Decrypt calls, want 2 (the shared key, then none)", stub.calls)
		}
	}
}
