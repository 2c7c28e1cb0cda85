package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets/kmstest"
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
	// Another KMS key: IncorrectKeyException, also ErrDecrypt.
	_, err = secrets.NewKMSKeyring(srv.Client(), "alias/other").DecryptDataKey(ctx, "tenant-a", wrapped)
	var incorrect *types.IncorrectKeyException
	if !errors.Is(err, secrets.ErrDecrypt) || !errors.As(err, &incorrect) {
		t.Fatalf("other key: err = %v, want ErrDecrypt wrapping IncorrectKeyException", err)
	}
	if g, d := srv.Calls(kmstest.OpGenerateDataKey), srv.Calls(kmstest.OpDecrypt); g != 1 || d != 3 {
		t.Fatalf("calls: GenerateDataKey %d, Decrypt %d; want 1, 3", g, d)
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
