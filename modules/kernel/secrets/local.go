package secrets

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// localWrapLabel starts the associated data of every key wrapped by a
// LocalKeyring, followed by the length-prefixed tenant id.
const localWrapLabel = "switchboard-datakey/v1"

// LocalKeyring is the local-mode KeyWrapper: data keys are wrapped with
// AES-256-GCM under a 32-byte master key, with the tenant id in the
// associated data. A wrapped key is nonce(12) || ciphertext+tag(48).
type LocalKeyring struct {
	aead cipher.AEAD
}

var _ KeyWrapper = (*LocalKeyring)(nil)

// NewLocalKeyring returns a keyring over a 32-byte master key (copied).
func NewLocalKeyring(master []byte) (*LocalKeyring, error) {
	if len(master) != dataKeySize {
		return nil, fmt.Errorf("local keyring: master key must be %d bytes, got %d", dataKeySize, len(master))
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, fmt.Errorf("local keyring: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("local keyring: %w", err)
	}
	return &LocalKeyring{aead: aead}, nil
}

// OpenKeyFile returns a keyring over the master key in path: the standard
// base64 encoding of 32 bytes, optionally followed by a newline. When the
// file does not exist it is created with mode 0600 (and missing parent
// directories with 0700) holding a new random key. A file with other
// contents is an error; it is never overwritten.
func OpenKeyFile(path string) (*LocalKeyring, error) {
	master, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		master, err = createKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	defer clear(master)
	return NewLocalKeyring(master)
}

func readKeyFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError names the path
	}
	defer clear(raw)
	text := bytes.TrimSpace(raw)
	master := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(master, text)
	if err != nil || n != dataKeySize {
		clear(master)
		return nil, fmt.Errorf("secrets: key file %s: invalid contents, want the base64 (standard encoding) of %d bytes", path, dataKeySize)
	}
	return master[:n], nil
}

// createKeyFile writes a new key to a temporary file and links it into
// place, so a concurrent reader never sees a partial file and a concurrent
// creator's key is never replaced (the loser reads the winner's key).
func createKeyFile(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("secrets: create key file directory: %w", err)
	}
	master := make([]byte, dataKeySize)
	if _, err := rand.Read(master); err != nil {
		return nil, fmt.Errorf("secrets: generate master key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".keyfile-*") // mode 0600
	if err != nil {
		clear(master)
		return nil, fmt.Errorf("secrets: create key file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	enc := []byte(base64.StdEncoding.EncodeToString(master) + "\n")
	defer clear(enc)
	_, werr := tmp.Write(enc)
	if werr == nil {
		werr = tmp.Chmod(0o600)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Link(tmp.Name(), path)
	}
	switch {
	case werr == nil:
		return master, nil
	case errors.Is(werr, fs.ErrExist):
		clear(master)
		return readKeyFile(path)
	default:
		clear(master)
		return nil, fmt.Errorf("secrets: create key file %s: %w", path, werr)
	}
}

// GenerateDataKey implements KeyWrapper.
func (k *LocalKeyring) GenerateDataKey(_ context.Context, tenantID string) (plaintext, wrapped []byte, err error) {
	plaintext = make([]byte, dataKeySize)
	if _, err := rand.Read(plaintext); err != nil {
		return nil, nil, fmt.Errorf("local keyring: %w", err)
	}
	wrapped = make([]byte, nonceSize, nonceSize+dataKeySize+tagSize)
	if _, err := rand.Read(wrapped); err != nil {
		return nil, nil, fmt.Errorf("local keyring: %w", err)
	}
	wrapped = k.aead.Seal(wrapped, wrapped[:nonceSize], plaintext, localWrapAD(tenantID))
	return plaintext, wrapped, nil
}

// DecryptDataKey implements KeyWrapper. A key wrapped for another tenant, or
// under another master key, fails with an error wrapping ErrDecrypt.
func (k *LocalKeyring) DecryptDataKey(_ context.Context, tenantID string, wrapped []byte) ([]byte, error) {
	if len(wrapped) != nonceSize+dataKeySize+tagSize {
		return nil, fmt.Errorf("local keyring: wrapped key has wrong length: %w", ErrDecrypt)
	}
	pt, err := k.aead.Open(nil, wrapped[:nonceSize], wrapped[nonceSize:], localWrapAD(tenantID))
	if err != nil {
		return nil, fmt.Errorf("local keyring: %w", ErrDecrypt)
	}
	return pt, nil
}

func localWrapAD(tenantID string) []byte {
	return lengthPrefixed([]byte(localWrapLabel), tenantID)
}
