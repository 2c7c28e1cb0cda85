package kmstest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func post(t *testing.T, s *Server, target, contentType, auth, body string) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(body))
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := s.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestRejectsMalformedRequests(t *testing.T) {
	s := NewServer()
	defer s.Close()
	const auth = "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00"
	for _, c := range []struct {
		name, target, ct, auth, body, wantType string
	}{
		{"unsigned", "TrentService.Decrypt", contentType, "", `{}`, "MissingAuthenticationTokenException"},
		{"content type", "TrentService.Decrypt", "application/json", auth, `{}`, "SerializationException"},
		{"unknown op", "TrentService.Encrypt", contentType, auth, `{}`, "UnknownOperationException"},
		{"no key id", "TrentService.GenerateDataKey", contentType, auth, `{"KeySpec":"AES_256"}`, "ValidationException"},
		{"no key spec", "TrentService.GenerateDataKey", contentType, auth, `{"KeyId":"k"}`, "ValidationException"},
		{"garbage blob", "TrentService.Decrypt", contentType, auth, `{"CiphertextBlob":"AAAA"}`, "InvalidCiphertextException"},
	} {
		status, body := post(t, s, c.target, c.ct, c.auth, c.body)
		if status != http.StatusBadRequest || body["__type"] != c.wantType {
			t.Errorf("%s: %d %v, want 400 %s", c.name, status, body, c.wantType)
		}
	}
	if len(s.Requests()) != 1 { // only the well-formed Decrypt is recorded
		t.Errorf("recorded %d requests, want 1", len(s.Requests()))
	}
}
