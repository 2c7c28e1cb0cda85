package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMS encryption context keys and the fixed purpose value sent with every
// data key request. They appear in CloudTrail and can be used in key policy
// conditions (kms:EncryptionContext:tenantId).
const (
	KMSContextTenant  = "tenantId"
	KMSContextPurpose = "purpose"
	KMSPurposeDataKey = "switchboard-data-key"
)

// KMSAPI is the part of *kms.Client that KMSKeyring uses.
type KMSAPI interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

// KMSKeyring is the Lambda-mode KeyWrapper: data keys come from AWS KMS
// GenerateDataKey (AES_256) under one KMS key, with the tenant id in the
// encryption context, so KMS itself refuses to unwrap a tenant's data key on
// behalf of another tenant.
type KMSKeyring struct {
	client KMSAPI
	keyID  string
}

var _ KeyWrapper = (*KMSKeyring)(nil)

// NewKMSKeyring returns a keyring over the KMS key keyID (key id, key ARN,
// alias name or alias ARN). It makes no request.
func NewKMSKeyring(client KMSAPI, keyID string) *KMSKeyring {
	return &KMSKeyring{client: client, keyID: keyID}
}

func (k *KMSKeyring) check() error {
	if k.client == nil {
		return errors.New("kms keyring: no client")
	}
	if k.keyID == "" {
		return errors.New("kms keyring: no key id")
	}
	return nil
}

func kmsContext(tenantID string) map[string]string {
	return map[string]string{KMSContextTenant: tenantID, KMSContextPurpose: KMSPurposeDataKey}
}

// GenerateDataKey implements KeyWrapper.
func (k *KMSKeyring) GenerateDataKey(ctx context.Context, tenantID string) (plaintext, wrapped []byte, err error) {
	if err := k.check(); err != nil {
		return nil, nil, err
	}
	out, err := k.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(k.keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: kmsContext(tenantID),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("kms keyring: generate data key: %w", err)
	}
	if len(out.Plaintext) != dataKeySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return nil, nil, errors.New("kms keyring: generate data key: unexpected response")
	}
	return out.Plaintext, out.CiphertextBlob, nil
}

// DecryptDataKey implements KeyWrapper. KMS's InvalidCiphertextException
// (wrong tenant, tampered blob) and IncorrectKeyException (blob made under
// another KMS key) are reported as ErrDecrypt.
func (k *KMSKeyring) DecryptDataKey(ctx context.Context, tenantID string, wrapped []byte) ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	out, err := k.client.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    wrapped,
		KeyId:             aws.String(k.keyID),
		EncryptionContext: kmsContext(tenantID),
	})
	if err != nil {
		var invalid *types.InvalidCiphertextException
		var incorrect *types.IncorrectKeyException
		if errors.As(err, &invalid) || errors.As(err, &incorrect) {
			return nil, fmt.Errorf("kms keyring: decrypt: %w: %w", ErrDecrypt, err)
		}
		return nil, fmt.Errorf("kms keyring: decrypt: %w", err)
	}
	if len(out.Plaintext) != dataKeySize {
		clear(out.Plaintext)
		return nil, errors.New("kms keyring: decrypt: unexpected response")
	}
	return out.Plaintext, nil
}
