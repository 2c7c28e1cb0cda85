package secrets

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestOpenKeyFileCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keys")
	path := filepath.Join(dir, "master.key")
	kr, err := OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode = %o, want 600", perm)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm&0o077 != 0 {
		t.Fatalf("key dir mode = %o, want 700", perm)
	}
	raw, _ := os.ReadFile(path)
	if !bytes.HasSuffix(raw, []byte("\n")) {
		t.Fatal("key file lacks a trailing newline")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		t.Fatalf("key file holds %d bytes (err %v), want base64 of 32", len(key), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries, want only the key file", len(entries))
	}

	// Sealed before reopening, opened after.
	blob := mustSeal(t, NewEnvelope(kr), "t1", "p", []byte("kept across restarts"))
	kr2, err := OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustOpen(t, NewEnvelope(kr2), "t1", "p", blob); string(got) != "kept across restarts" {
		t.Fatalf("opened to %q", got)
	}
	raw2, _ := os.ReadFile(path)
	if !bytes.Equal(raw, raw2) {
		t.Fatal("reopen rewrote the key file")
	}

	// A different key file cannot open it.
	kr3, err := OpenKeyFile(filepath.Join(t.TempDir(), "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEnvelope(kr3).Open(context.Background(), "t1", "p", blob); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other master key: err = %v, want ErrDecrypt", err)
	}
}

func TestOpenKeyFileAcceptsCRLF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyFile(path); err != nil {
		t.Fatal(err)
	}
}

func TestOpenKeyFileCorrupt(t *testing.T) {
	secretish := "c2VjcmV0LWtleS1tYXRlcmlhbA==" // valid base64, wrong length
	for name, contents := range map[string]string{
		"empty":        "",
		"not base64":   "this is not base64 at all!!\n",
		"wrong length": secretish + "\n",
		"too long":     base64.StdEncoding.EncodeToString(make([]byte, 33)),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, []byte(contents), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenKeyFile(path)
			if err == nil {
				t.Fatal("corrupt key file accepted")
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			if contents != "" && strings.Contains(err.Error(), strings.TrimSpace(contents)) {
				t.Fatalf("error %q prints the file contents", err)
			}
			if after, _ := os.ReadFile(path); string(after) != contents {
				t.Fatal("corrupt key file was overwritten")
			}
		})
	}
}

func TestOpenKeyFileUnreadablePath(t *testing.T) {
	path := t.TempDir() // a directory, not a file
	if _, err := OpenKeyFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want an error naming %s", err, path)
	}
}

func TestOpenKeyFileConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	const n = 8
	krs := make([]*LocalKeyring, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			krs[i], errs[i] = OpenKeyFile(path)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// All of them ended up with the same master key.
	blob := mustSeal(t, NewEnvelope(krs[0]), "t", "p", []byte("x"))
	for _, kr := range krs[1:] {
		mustOpen(t, NewEnvelope(kr), "t", "p", blob)
	}
}

func TestLocalKeyringTenantBinding(t *testing.T) {
	ctx := context.Background()
	kr := testKeyring(t)
	pt, wrapped, err := kr.GenerateDataKey(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(pt) != 32 || bytes.Contains(wrapped, pt) {
		t.Fatal("bad data key or wrapped form contains it")
	}
	got, err := kr.DecryptDataKey(ctx, "tenant-a", wrapped)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("unwrap for the same tenant: %v", err)
	}
	if _, err := kr.DecryptDataKey(ctx, "tenant-b", wrapped); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("unwrap for another tenant: err = %v, want ErrDecrypt", err)
	}
	if _, err := kr.DecryptDataKey(ctx, "tenant-a", wrapped[:len(wrapped)-1]); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("truncated: err = %v, want ErrDecrypt", err)
	}
	if _, err := NewLocalKeyring(make([]byte, 16)); err == nil {
		t.Fatal("16-byte master key accepted")
	}
}
