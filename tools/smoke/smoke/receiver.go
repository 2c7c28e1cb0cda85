package smoke

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Received is one POST the receiver got.
type Received struct {
	At           time.Time
	WebhookID    string
	Timestamp    string // webhook-timestamp
	InvocationID string // X-Invocation-Id
	Body         []byte
	Verified     bool   // the signature verified with the subscription's secret
	VerifyError  string // why not
	Answered     int    // the status the receiver answered
	// From the verified body:
	Type      string // "message.delivered"
	MessageID string // data.messageId
	Status    string // data.status
}

// Receiver is a subscriber endpoint: it verifies every POST with the
// subscription's secret (Standard Webhooks, the reference library; the
// timestamp within 5 minutes), records it and answers 204, or 401 when the
// signature does not verify. With RejectFirst it answers 503 to the first
// verified webhook once, so that the deployment retries it: the retry must
// carry the same webhook-id and body.
type Receiver struct {
	RejectFirst bool

	mu       sync.Mutex
	wh       *standardwebhooks.Webhook
	got      []Received
	rejected string // the webhook-id answered 503 on purpose
	changed  chan struct{}

	ln  net.Listener
	srv *http.Server
}

// StartReceiver listens on addr ("127.0.0.1:0" for any free port) and
// serves until Close.
func StartReceiver(addr string) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: listen on %s: %w", addr, err)
	}
	r := &Receiver{ln: ln, changed: make(chan struct{})}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Addr is the address the receiver listens on ("127.0.0.1:41234").
func (r *Receiver) Addr() string { return r.ln.Addr().String() }

// Close stops the receiver.
func (r *Receiver) Close() error {
	if r.srv == nil {
		return nil
	}
	return r.srv.Close()
}

// SetSecret sets the subscription's secret (whsec_...). Until it is set the
// receiver answers 503 (the deployment retries).
func (r *Receiver) SetSecret(secret string) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return fmt.Errorf("subscription secret %.10s...: %w", secret, err)
	}
	r.mu.Lock()
	r.wh = wh
	r.mu.Unlock()
	return nil
}

// Received returns what the receiver got so far, oldest first.
func (r *Receiver) Received() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.got...)
}

// Rejected is the webhook-id answered 503 on purpose ("" while none).
func (r *Receiver) Rejected() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected
}

// Changed returns a channel closed at the next recorded request.
func (r *Receiver) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// ServeHTTP implements http.Handler.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "switchboard smoke test webhook receiver: POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	rec := Received{At: time.Now(), WebhookID: req.Header.Get(standardwebhooks.HeaderWebhookID),
		Timestamp: req.Header.Get(standardwebhooks.HeaderWebhookTimestamp), InvocationID: req.Header.Get("X-Invocation-Id"), Body: body}

	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		r.got = append(r.got, rec)
		close(r.changed)
		r.changed = make(chan struct{})
	}()
	if r.wh == nil {
		rec.Answered, rec.VerifyError = http.StatusServiceUnavailable, "arrived before the secret was known"
		http.Error(w, "not ready", rec.Answered)
		return
	}
	if err := r.wh.Verify(body, req.Header); err != nil {
		rec.Answered, rec.VerifyError = http.StatusUnauthorized, err.Error()
		http.Error(w, "bad signature", rec.Answered)
		return
	}
	rec.Verified = true
	var p struct {
		Type string `json:"type"`
		Data struct {
			MessageID string `json:"messageId"`
			Status    string `json:"status"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		rec.VerifyError = "body is not the contract's JSON: " + err.Error()
	}
	rec.Type, rec.MessageID, rec.Status = p.Type, p.Data.MessageID, p.Data.Status
	if r.RejectFirst && r.rejected == "" {
		r.rejected = rec.WebhookID
		rec.Answered = http.StatusServiceUnavailable
		http.Error(w, "switchboard smoke test: first attempt refused on purpose, to check the retry", rec.Answered)
		return
	}
	rec.Answered = http.StatusNoContent
	w.WriteHeader(rec.Answered)
}
