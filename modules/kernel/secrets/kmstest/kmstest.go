// Package kmstest is a fake AWS KMS endpoint for tests. It speaks the AWS
// JSON 1.1 protocol that the real SDK uses (POST /, X-Amz-Target
// "TrentService.<Operation>", Content-Type application/x-amz-json-1.1,
// base64 blobs in JSON bodies), so code under test can use a real
// *kms.Client pointed at [Server.URL]; [Server.Client] builds one.
//
// Only GenerateDataKey and Decrypt are implemented, and honestly: ciphertext
// blobs are AES-256-GCM under a per-server random key with the key id and
// the encryption context as associated data, so a Decrypt with another
// encryption context fails with InvalidCiphertextException (HTTP 400), and
// one naming another key id fails with IncorrectKeyException. Requests
// without a SigV4 Authorization header, with a wrong content type or an
// unknown operation are rejected like KMS would. Any non-empty key id is
// accepted; a blob only decrypts under the exact key id string it was made
// with (the fake does not resolve aliases).
package kmstest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// Operation names, as counted by Calls.
const (
	OpGenerateDataKey = "GenerateDataKey"
	OpDecrypt         = "Decrypt"
)

const (
	contentType  = "application/x-amz-json-1.1"
	targetPrefix = "TrentService."
	blobMagic    = "kmstest1"
	nonceSize    = 12
)

// Request is a well-formed request the server received.
type Request struct {
	Operation         string
	KeyID             string
	KeySpec           string // GenerateDataKey only
	NumberOfBytes     int    // GenerateDataKey only
	EncryptionContext map[string]string
}

// Server is a running fake KMS. Close it when done.
type Server struct {
	*httptest.Server

	aead cipher.AEAD

	mu    sync.Mutex
	calls map[string]int
	reqs  []Request
}

// NewServer starts a fake KMS on a loopback port with a fresh random key.
func NewServer() *Server {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("kmstest: " + err.Error())
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("kmstest: " + err.Error())
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("kmstest: " + err.Error())
	}
	s := &Server{aead: aead, calls: make(map[string]int)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Client returns a real KMS client (region us-east-1, static credentials)
// that sends its requests to this server.
func (s *Server) Client() *kms.Client {
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDKMSTEST", "kmstest-secret", ""),
		HTTPClient:   s.Server.Client(),
	})
}

// Calls reports how many requests named operation op (e.g. OpDecrypt) the
// server has received, failed ones included.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Requests returns the well-formed requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		r.EncryptionContext = maps.Clone(r.EncryptionContext)
		out[i] = r
	}
	return out
}

type generateDataKeyInput struct {
	KeyId             string
	KeySpec           string
	NumberOfBytes     int
	EncryptionContext map[string]string
}

type decryptInput struct {
	CiphertextBlob    []byte
	KeyId             string
	EncryptionContext map[string]string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()

	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		writeError(w, http.StatusNotFound, "UnknownOperationException", "not found")
		return
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") ||
		!strings.Contains(r.Header.Get("Authorization"), "/kms/aws4_request"):
		writeError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "request is not signed with SigV4 for kms")
		return
	case r.Header.Get("Content-Type") != contentType:
		writeError(w, http.StatusBadRequest, "SerializationException", "content type must be "+contentType)
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	switch op {
	case OpGenerateDataKey:
		var in generateDataKeyInput
		if err := dec.Decode(&in); err != nil {
			writeError(w, http.StatusBadRequest, "SerializationException", "malformed request body")
			return
		}
		s.generateDataKey(w, in)
	case OpDecrypt:
		var in decryptInput
		if err := dec.Decode(&in); err != nil {
			writeError(w, http.StatusBadRequest, "SerializationException", "malformed request body")
			return
		}
		s.decrypt(w, in)
	default:
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "unsupported operation")
	}
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
}

func (s *Server) generateDataKey(w http.ResponseWriter, in generateDataKeyInput) {
	n := 0
	switch {
	case in.KeyId == "":
		writeError(w, http.StatusBadRequest, "ValidationException", "KeyId is required")
		return
	case in.KeySpec != "" && in.NumberOfBytes != 0:
		writeError(w, http.StatusBadRequest, "ValidationException", "KeySpec and NumberOfBytes are mutually exclusive")
		return
	case in.KeySpec == "AES_256":
		n = 32
	case in.KeySpec == "AES_128":
		n = 16
	case in.KeySpec != "":
		writeError(w, http.StatusBadRequest, "ValidationException", "unknown KeySpec")
		return
	case in.NumberOfBytes >= 1 && in.NumberOfBytes <= 1024:
		n = in.NumberOfBytes
	default:
		writeError(w, http.StatusBadRequest, "ValidationException", "KeySpec or NumberOfBytes is required")
		return
	}
	s.record(Request{Operation: OpGenerateDataKey, KeyID: in.KeyId, KeySpec: in.KeySpec, NumberOfBytes: in.NumberOfBytes, EncryptionContext: in.EncryptionContext})

	plaintext := make([]byte, n)
	rand.Read(plaintext)
	blob := appendString([]byte(blobMagic), in.KeyId)
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	blob = append(blob, nonce...)
	blob = s.aead.Seal(blob, nonce, plaintext, aad(in.KeyId, in.EncryptionContext))
	writeJSON(w, map[string]any{"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": in.KeyId})
}

func (s *Server) decrypt(w http.ResponseWriter, in decryptInput) {
	if len(in.CiphertextBlob) == 0 {
		writeError(w, http.StatusBadRequest, "ValidationException", "CiphertextBlob is required")
		return
	}
	s.record(Request{Operation: OpDecrypt, KeyID: in.KeyId, EncryptionContext: in.EncryptionContext})

	keyID, rest, ok := parseBlob(in.CiphertextBlob)
	if !ok {
		writeError(w, http.StatusBadRequest, "InvalidCiphertextException", "")
		return
	}
	if in.KeyId != "" && in.KeyId != keyID {
		writeError(w, http.StatusBadRequest, "IncorrectKeyException", "The key ID in the request does not identify the key that encrypted the ciphertext.")
		return
	}
	plaintext, err := s.aead.Open(nil, rest[:nonceSize], rest[nonceSize:], aad(keyID, in.EncryptionContext))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidCiphertextException", "")
		return
	}
	writeJSON(w, map[string]any{"Plaintext": plaintext, "KeyId": keyID, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
}

func parseBlob(b []byte) (keyID string, rest []byte, ok bool) {
	b, ok = bytes.CutPrefix(b, []byte(blobMagic))
	if !ok || len(b) < 4 {
		return "", nil, false
	}
	n := binary.BigEndian.Uint32(b[:4])
	b = b[4:]
	if uint64(len(b)) < uint64(n)+nonceSize+16 {
		return "", nil, false
	}
	return string(b[:n]), b[n:], true
}

// aad binds the key id and the encryption context (sorted, length-prefixed).
func aad(keyID string, ec map[string]string) []byte {
	out := appendString(nil, keyID)
	for _, k := range slices.Sorted(maps.Keys(ec)) {
		out = appendString(out, k)
		out = appendString(out, ec[k])
	}
	return out
}

func appendString(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-RequestId", "kmstest")
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-RequestId", "kmstest")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}
