package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
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
// GenerateDataKey (AES_256), with the tenant id in the encryption context, so
// KMS itself refuses to unwrap a tenant's data key on behalf of another
// tenant.
//
// Which KMS key wraps a tenant's data keys: the shared key (keyID) for every
// tenant, unless the keyring has a tenantres.Resolver (WithResources) that
// answers a siloed tenant: then that tenant's own key (its KMSKeyARN). When
// the resolver cannot tell, GenerateDataKey fails rather than wrap a siloed
// tenant's data key under the shared key. Unwrapping works for data keys
// wrapped under either key, before or after a tenant got its own key (see
// DecryptDataKey).
type KMSKeyring struct {
	client    KMSAPI
	keyID     string
	resources tenantres.Resolver
	log       *slog.Logger
}

var _ KeyWrapper = (*KMSKeyring)(nil)

// NewKMSKeyring returns a keyring over the shared KMS key keyID (key id, key
// ARN, alias name or alias ARN). It makes no request.
func NewKMSKeyring(client KMSAPI, keyID string) *KMSKeyring {
	return &KMSKeyring{client: client, keyID: keyID}
}

// WithResources makes the keyring wrap a siloed tenant's data keys under the
// tenant's own KMS key, as r tells (nil: the shared key for every tenant).
// log (nil: discard) records unwraps that had to fall back to the key named
// in the ciphertext. It returns k.
func (k *KMSKeyring) WithResources(r tenantres.Resolver, log *slog.Logger) *KMSKeyring {
	k.resources, k.log = r, log
	return k
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

// tenantKey returns the tenant's own KMS key ("" for none: the shared key),
// or the resolver's error.
func (k *KMSKeyring) tenantKey(ctx context.Context, tenantID string) (string, error) {
	if k.resources == nil {
		return "", nil
	}
	res, err := k.resources.Resources(ctx, tenantID)
	if err != nil {
		return "", err
	}
	if res.Siloed() {
		return res.KMSKeyARN, nil
	}
	return "", nil
}

// GenerateDataKey implements KeyWrapper: under the tenant's own key when it
// is siloed, the shared key otherwise. When the resolver fails it fails too
// (retry later): a siloed tenant's data key is never wrapped under the shared
// key for want of an answer.
func (k *KMSKeyring) GenerateDataKey(ctx context.Context, tenantID string) (plaintext, wrapped []byte, err error) {
	if err := k.check(); err != nil {
		return nil, nil, err
	}
	keyID, err := k.tenantKey(ctx, tenantID)
	if err != nil {
		return nil, nil, fmt.Errorf("kms keyring: generate data key: key of tenant %s: %w", tenantID, err)
	}
	if keyID == "" {
		keyID = k.keyID
	}
	out, err := k.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: kmsContext(tenantID),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("kms keyring: generate data key under %s: %w", keyID, err)
	}
	if len(out.Plaintext) != dataKeySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return nil, nil, errors.New("kms keyring: generate data key: unexpected response")
	}
	return out.Plaintext, out.CiphertextBlob, nil
}

// DecryptDataKey implements KeyWrapper. The wrapped key does not say which
// KMS key wrapped it (a tenant's own key, or the shared key before the tenant
// had one), so it names the keys it knows in turn, each explicitly (KMS's best
// practice): the tenant's own key (when siloed), then the shared key. When
// each of them answers IncorrectKeyException (a key the tenant's parameter no
// longer names, or a shared key that was replaced), a last Decrypt without a
// KeyId lets KMS use the key recorded in the ciphertext (symmetric keys only;
// the function's IAM policy bounds which keys it may use), logged with that
// key. A resolver failure skips the tenant's key (the other attempts still
// open the data key).
//
// ErrDecrypt (the data key never opens here): KMS's InvalidCiphertextException
// (wrong tenant, tampered blob), IncorrectKeyException, and, on the last
// attempt, NotFoundException (the key the ciphertext names is gone). Other
// failures (KMS unreachable, throttled, a disabled key, and AccessDenied:
// IAM and key policies take a while to reach every region during a
// tenant's deploy) are not ErrDecrypt: they may go away.
func (k *KMSKeyring) DecryptDataKey(ctx context.Context, tenantID string, wrapped []byte) ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	var candidates []string
	own, rerr := k.tenantKey(ctx, tenantID)
	if own != "" && own != k.keyID {
		candidates = append(candidates, own)
	}
	candidates = append(candidates, k.keyID)
	for _, keyID := range candidates {
		plain, _, err := k.decrypt(ctx, tenantID, keyID, wrapped)
		var incorrect *types.IncorrectKeyException
		if !errors.As(err, &incorrect) {
			return plain, err
		}
	}
	// No key we know wrapped it: let KMS use the one the ciphertext names.
	plain, used, err := k.decrypt(ctx, tenantID, "", wrapped)
	if err != nil {
		var missing *types.NotFoundException
		if !errors.Is(err, ErrDecrypt) && errors.As(err, &missing) {
			err = fmt.Errorf("%w: %w", ErrDecrypt, err)
		}
		return nil, fmt.Errorf("kms keyring: no known key (%v) wrapped this data key: %w", candidates, err)
	}
	attrs := []any{slog.String("tenantId", tenantID), slog.String("kmsKeyId", used), slog.Any("knownKeys", candidates)}
	if rerr != nil {
		attrs = append(attrs, slog.String("resourcesError", rerr.Error()))
	}
	k.logger().WarnContext(ctx, "data key unwrapped by a KMS key the keyring no longer names; keep that key enabled while data sealed under it is kept", attrs...)
	return plain, nil
}

// decrypt makes one Decrypt call, naming keyID unless it is "". It returns
// the data key and the key KMS used.
func (k *KMSKeyring) decrypt(ctx context.Context, tenantID, keyID string, wrapped []byte) ([]byte, string, error) {
	in := &kms.DecryptInput{CiphertextBlob: wrapped, EncryptionContext: kmsContext(tenantID)}
	if keyID != "" {
		in.KeyId = aws.String(keyID)
	}
	out, err := k.client.Decrypt(ctx, in)
	if err != nil {
		var invalid *types.InvalidCiphertextException
		var incorrect *types.IncorrectKeyException
		if errors.As(err, &invalid) || errors.As(err, &incorrect) {
			return nil, "", fmt.Errorf("kms keyring: decrypt: %w: %w", ErrDecrypt, err)
		}
		return nil, "", fmt.Errorf("kms keyring: decrypt: %w", err)
	}
	if len(out.Plaintext) != dataKeySize {
		clear(out.Plaintext)
		return nil, "", errors.New("kms keyring: decrypt: unexpected response")
	}
	return out.Plaintext, aws.ToString(out.KeyId), nil
}

func (k *KMSKeyring) logger() *slog.Logger {
	if k.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return k.log
}
