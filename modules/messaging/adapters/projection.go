package adapters

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// Record collections. Persisted.
const (
	CollectionChannels         = "channels"
	CollectionChannelRoutes    = "channel-routes" // global: channel id -> tenant
	CollectionMessages         = "messages"
	CollectionProviderMessages = "provider-messages"
	// CollectionInboundClaims makes an inbound message once when a stray
	// receipt waited under its provider id (the lookup row is then written
	// over it, without its own condition): ProviderMessageRow, IfAbsent.
	CollectionInboundClaims = "provider-inbound-claims"
)

// Channel lists: one partition per tenant ("") or per scope, sorted by
// channel id (newest last). Channels are created rarely: one write shard.
// Persisted: changing them is a migration.
var (
	ChannelsList        = eventstore.List{Name: "channels", Slot: 1, Shards: 1}
	ChannelsByScopeList = eventstore.List{Name: "channels-by-scope", Slot: 2, Shards: 1}
)

// MessageListShards is how many write shards each partition of a message
// list has: one tenant sends up to 5,000 messages/s and a list partition
// takes about 1,000 writes/s, so 16 leave room for status moves (a status
// list takes a delete and a put per transition).
const MessageListShards = 16

// Message lists, one per filter of list-messages, each sorted by message id
// (a ULID: descending is newest first). Persisted: changing them is a migration.
var (
	MessagesList                = eventstore.List{Name: "messages", Slot: 1, Shards: MessageListShards}
	MessagesByScopeList         = eventstore.List{Name: "messages-by-scope", Slot: 2, Shards: MessageListShards}
	MessagesByChannelList       = eventstore.List{Name: "messages-by-channel", Slot: 3, Shards: MessageListShards}
	MessagesByStatusList        = eventstore.List{Name: "messages-by-status", Slot: 4, Shards: MessageListShards}
	MessagesByScopeStatusList   = eventstore.List{Name: "messages-by-scope-status", Slot: 5, Shards: MessageListShards}
	MessagesByChannelStatusList = eventstore.List{Name: "messages-by-channel-status", Slot: 6, Shards: MessageListShards}
)

// ChannelRow is a row of the "channels" read model. It never holds secrets
// (the sealed credentials and inbound secret stay in the channel's stream).
type ChannelRow struct {
	ChannelID string            `json:"channelId"`
	ScopeID   string            `json:"scopeId"`
	ScopePath []string          `json:"scopePath"`
	Name      string            `json:"name"`
	Type      string            `json:"type"`
	Provider  string            `json:"provider"`
	From      string            `json:"from"`
	Config    map[string]string `json:"config,omitempty"`
	CreatedAt string            `json:"createdAt"` // app.TimeFormat
	Version   int64             `json:"version"`
}

// ChannelRouteRow is a global "channel-routes" row: the tenant of a channel,
// for provider webhooks that know only the channel id.
type ChannelRouteRow struct {
	TenantID string `json:"tenantId"`
}

// MessageRow is a row of the "messages" read model: everything a
// MessageView shows, and the scope path and stream version behind it.
type MessageRow struct {
	MessageID         string            `json:"messageId"`
	ChannelID         string            `json:"channelId"`
	ScopeID           string            `json:"scopeId"`
	ScopePath         []string          `json:"scopePath"`
	ChannelType       string            `json:"channelType"`
	Provider          string            `json:"provider"`
	Direction         string            `json:"direction"`
	To                string            `json:"to"`
	From              string            `json:"from"`
	Content           domain.Content    `json:"content"`
	Status            string            `json:"status"`
	StatusReason      string            `json:"statusReason,omitempty"`
	Attempts          int               `json:"attempts"`
	ProviderMessageID string            `json:"providerMessageId,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
	SendAt            string            `json:"sendAt,omitempty"` // app.TimeFormat
	CreatedAt         string            `json:"createdAt"`        // app.TimeFormat
	UpdatedAt         string            `json:"updatedAt"`        // app.TimeFormat
	Version           int64             `json:"version"`
}

// ProviderMessageRow is a "provider-messages" row: the message a provider
// message id of a channel stands for (receipts name only the provider's id),
// or, before the send's commit recorded the id, the receipt that waits for
// it (MessageID empty; the row expires with it: app.PendingReceipt).
type ProviderMessageRow struct {
	MessageID string             `json:"messageId,omitempty"`
	Pending   *PendingReceiptRow `json:"pendingReceipt,omitempty"`
}

// PendingReceiptRow is an app.PendingReceipt as stored.
type PendingReceiptRow struct {
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	WebhookID  string `json:"webhookId"`
	ReceivedAt string `json:"receivedAt"` // RFC 3339, nanoseconds
}

// ProviderMessageKey is the "provider-messages" key of a provider message id.
// An id of at most maxRawProviderID bytes of printable UTF-8 that does not
// start with '#' is the key as it is (every row written before this rule
// keeps its key); any other id, which a store key may not hold, is keyed
// "#" and its SHA-256 (base64url), so that a provider's id of any length or
// bytes finds its message.
func ProviderMessageKey(channelID, providerMessageID string) string {
	if rawProviderID(providerMessageID) {
		return channelID + "/" + providerMessageID
	}
	sum := sha256.Sum256([]byte(providerMessageID))
	return channelID + "/#" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// maxRawProviderID bounds the provider ids keyed as they are.
const maxRawProviderID = 512

func rawProviderID(id string) bool {
	if len(id) > maxRawProviderID || strings.HasPrefix(id, "#") || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func formatTime(t time.Time) string { return t.UTC().Format(app.TimeFormat) }

// ProjectChannel returns the rows of a channel rebuilt from its whole
// history: its "channels" row (in ChannelsList and ChannelsByScopeList) and
// its global "channel-routes" row. The write path and rebuilds both use it,
// so a rebuilt row is byte for byte the row the write path wrote.
func ProjectChannel(tenantID string, history []domain.Recorded) ([]eventstore.Record, error) {
	c := domain.ReplayChannel(tenantID, history)
	if c == nil {
		return nil, fmt.Errorf("project channel: no channel-created in %d events", len(history))
	}
	var createdAt time.Time
	for _, r := range history {
		if _, ok := r.Event.(domain.ChannelCreated); ok {
			createdAt = r.OccurredAt
			break
		}
	}
	row, err := marshal(ChannelRow{
		ChannelID: c.ID, ScopeID: c.ScopeID, ScopePath: c.ScopePath, Name: c.Name, Type: string(c.Type),
		Provider: c.Provider, From: c.From, Config: c.Config, CreatedAt: formatTime(createdAt), Version: c.Version,
	})
	if err != nil {
		return nil, fmt.Errorf("project channel %s: %w", c.ID, err)
	}
	route, err := marshal(ChannelRouteRow{TenantID: tenantID})
	if err != nil {
		return nil, fmt.Errorf("project channel route %s: %w", c.ID, err)
	}
	return []eventstore.Record{
		{
			Collection: CollectionChannels, Key: c.ID, Data: row,
			Lists: []eventstore.ListEntry{
				{List: ChannelsList, Partition: "", Sort: c.ID},
				{List: ChannelsByScopeList, Partition: c.ScopeID, Sort: c.ID},
			},
		},
		{Collection: CollectionChannelRoutes, Key: c.ID, Global: true, Data: route},
	}, nil
}

// messageRow is the read-model row of a message.
func messageRow(m *domain.Message) MessageRow {
	r := MessageRow{
		MessageID: m.ID, ChannelID: m.ChannelID, ScopeID: m.ScopeID, ScopePath: m.ScopePath,
		ChannelType: string(m.ChannelType), Provider: m.Provider, Direction: m.Direction,
		To: m.To, From: m.From, Content: m.Content, Status: string(m.Status), StatusReason: m.StatusReason,
		Attempts: m.Attempts, ProviderMessageID: m.ProviderMessageID, CreatedAt: formatTime(m.CreatedAt),
		UpdatedAt: formatTime(m.UpdatedAt), Version: m.Version,
	}
	if len(m.Metadata) > 0 {
		r.Metadata = m.Metadata
	}
	if m.SendAt != nil {
		r.SendAt = formatTime(*m.SendAt)
	}
	return r
}

// View is the row as the contract shows a message: statusReason and sendAt
// null when there is none, metadata {} when empty.
func (r MessageRow) View() app.MessageView {
	v := app.MessageView{
		ScopePath: r.ScopePath, MessageID: r.MessageID, ChannelID: r.ChannelID, ScopeID: r.ScopeID,
		Direction: r.Direction, To: r.To, From: r.From, Content: r.Content, Status: r.Status,
		Attempts: r.Attempts, Metadata: r.Metadata, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.StatusReason != "" {
		reason := r.StatusReason
		v.StatusReason = &reason
	}
	if r.SendAt != "" {
		at := r.SendAt
		v.SendAt = &at
	}
	if v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	return v
}

// messageLists are a message's memberships: one entry in each message list.
func messageLists(m *domain.Message) []eventstore.ListEntry {
	status := string(m.Status)
	return []eventstore.ListEntry{
		{List: MessagesList, Partition: "", Sort: m.ID},
		{List: MessagesByScopeList, Partition: m.ScopeID, Sort: m.ID},
		{List: MessagesByChannelList, Partition: m.ChannelID, Sort: m.ID},
		{List: MessagesByStatusList, Partition: status, Sort: m.ID},
		{List: MessagesByScopeStatusList, Partition: m.ScopeID + "/" + status, Sort: m.ID},
		{List: MessagesByChannelStatusList, Partition: m.ChannelID + "/" + status, Sort: m.ID},
	}
}

// ProjectMessage returns the "messages" row of a message (with its list
// memberships). The write path projects the message after its new events,
// a rebuild the message replayed from its stream: the same state gives the
// same bytes.
func ProjectMessage(m *domain.Message) (eventstore.Record, error) {
	row, err := marshal(messageRow(m))
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("project message %s: %w", m.ID, err)
	}
	return eventstore.Record{Collection: CollectionMessages, Key: m.ID, Data: row, Lists: messageLists(m)}, nil
}

// ProjectProviderMessage returns the "provider-messages" row of a message
// that has a provider message id; ok is false when it has none.
func ProjectProviderMessage(m *domain.Message) (rec eventstore.Record, ok bool, err error) {
	if m.ProviderMessageID == "" {
		return eventstore.Record{}, false, nil
	}
	row, err := marshal(ProviderMessageRow{MessageID: m.ID})
	if err != nil {
		return eventstore.Record{}, false, fmt.Errorf("project provider message %s: %w", m.ID, err)
	}
	return eventstore.Record{Collection: CollectionProviderMessages, Key: ProviderMessageKey(m.ChannelID, m.ProviderMessageID), Data: row}, true, nil
}
