package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// receiptPayload is the payload of WorkPostReceipt. Persisted.
type receiptPayload struct {
	// WebhookID is the receipt's webhook-id: fixed when the item is made,
	// the same on every retry of the post.
	WebhookID         string        `json:"webhookId"`
	URL               string        `json:"url"`
	ChannelID         string        `json:"channelId"`
	ProviderMessageID string        `json:"providerMessageId"`
	Status            domain.Status `json:"status"`
	Reason            string        `json:"reason,omitempty"`
	// SealedSecret is the channel's inbound secret, sealed for the tenant
	// with PurposeReceiptSecret.
	SealedSecret []byte `json:"sealedSecret"`
}

// receiptBody is the body the sandbox posts (contract section 8).
type receiptBody struct {
	Type              string `json:"type"`
	ProviderMessageID string `json:"providerMessageId"`
	Status            string `json:"status"`
	Reason            string `json:"reason,omitempty"`
}

// receipt makes the receipt item of an acceptance; ok is false when the
// recipient gets none (silent) or the channel cannot receive one (no URL or
// secret: logged).
func (p *Provider) receipt(ctx context.Context, req app.SendRequest, rec sendRecord, now time.Time) (eventstore.OutboxEntry, bool, error) {
	pl := receiptPayload{URL: req.InboundWebhookURL, ChannelID: req.ChannelID, ProviderMessageID: rec.ProviderMessageID}
	switch rec.Outcome {
	case outcomeSilent:
		return eventstore.OutboxEntry{}, false, nil
	case outcomeBounce:
		pl.Status, pl.Reason = domain.StatusUndelivered, ReasonCarrierRejected
	default:
		pl.Status = domain.StatusDelivered
	}
	if req.InboundWebhookURL == "" || req.InboundSecret == "" {
		p.log.WarnContext(ctx, "sandbox: no inbound webhook URL or secret; the receipt is not posted",
			slog.String("channelId", req.ChannelID), slog.String("providerMessageId", rec.ProviderMessageID))
		return eventstore.OutboxEntry{}, false, nil
	}
	sealed, err := p.sealer.Seal(ctx, req.TenantID, PurposeReceiptSecret, []byte(req.InboundSecret))
	if err != nil {
		return eventstore.OutboxEntry{}, false, fmt.Errorf("seal receipt secret: %w", err)
	}
	pl.SealedSecret = sealed
	pl.WebhookID = p.ids.New(prefixReceipt)
	payload, err := json.Marshal(pl)
	if err != nil {
		return eventstore.OutboxEntry{}, false, fmt.Errorf("encode receipt: %w", err)
	}
	return eventstore.OutboxEntry{
		ID: p.ids.New(ids.Work), TenantID: req.TenantID, Type: WorkPostReceipt, Payload: payload,
		DueAt: now.Add(p.receiptDelay), Invocation: invocation.From(ctx).Meta(),
	}, true, nil
}

// RegisterWork registers the sandbox's work type (WorkPostReceipt) with r.
func (p *Provider) RegisterWork(r *work.Registry) { r.Register(WorkPostReceipt, p.postReceipt) }

// postReceipt posts one receipt, signed now. A transport error or an answer
// other than 2xx is an error: the work path retries the post (same webhook-id).
func (p *Provider) postReceipt(ctx context.Context, it work.Item) error {
	var pl receiptPayload
	if err := json.Unmarshal(it.Payload, &pl); err != nil {
		return fmt.Errorf("%s %s: decode payload: %w", it.Type, it.ID, err)
	}
	secret, err := p.sealer.Open(ctx, it.TenantID, PurposeReceiptSecret, pl.SealedSecret)
	if err != nil {
		return fmt.Errorf("%s %s: open secret: %w", it.Type, it.ID, err)
	}
	body, err := json.Marshal(receiptBody{Type: app.EventReceipt, ProviderMessageID: pl.ProviderMessageID,
		Status: string(pl.Status), Reason: pl.Reason})
	if err != nil {
		return fmt.Errorf("%s %s: encode body: %w", it.Type, it.ID, err)
	}
	now := p.clock.Now()
	sig, err := Sign(secret, pl.WebhookID, now, body)
	if err != nil {
		return fmt.Errorf("%s %s: sign: %w", it.Type, it.ID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, pl.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: request: %w", it.Type, it.ID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "switchboard-sandbox/1")
	req.Header.Set(HeaderID, pl.WebhookID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	if tp := traceparent(ctx); tp != "" {
		req.Header.Set("traceparent", tp)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: post receipt %s: %w", it.Type, it.ID, pl.WebhookID, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s %s: post receipt %s: answered %d", it.Type, it.ID, pl.WebhookID, resp.StatusCode)
	}
	p.log.DebugContext(ctx, "sandbox receipt posted", slog.String("webhookId", pl.WebhookID),
		slog.String("providerMessageId", pl.ProviderMessageID), slog.String("status", string(pl.Status)))
	return nil
}

// traceparent continues the invocation's trace in the receipt post (a new
// span), so the webhook's invocation shares the trace id of the send.
func traceparent(ctx context.Context) string {
	tid := invocation.From(ctx).TraceID
	if !invocation.ValidTraceID(tid) {
		return ""
	}
	var span [8]byte
	_, _ = rand.Read(span[:])
	return "00-" + tid + "-" + hex.EncodeToString(span[:]) + "-01"
}
