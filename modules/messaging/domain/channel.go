package domain

import (
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// ChannelType is the kind of messages a channel carries. Persisted.
type ChannelType string

// Channel types.
const (
	ChannelSMS   ChannelType = "sms"
	ChannelEmail ChannelType = "email"
)

// Providers. Persisted; each has an adapter behind the app.Provider port.
const (
	ProviderSandbox = "sandbox"
)

// Channel is a configured way of sending one type of message through one
// provider, owned by a scope. Credentials and the inbound secret are kept
// sealed (encrypted with the tenant's data key): the domain never sees them
// in clear, and no query returns them.
type Channel struct {
	ID       string
	TenantID string
	ScopeID  string
	// ScopePath is the channel's scope and its ancestors, root first (the
	// resource's place for authorization and subscription matching).
	ScopePath []string
	Name      string
	Type      ChannelType
	Provider  string
	From      string
	Config    map[string]string
	// SealedCredentials and SealedInboundSecret are ciphertexts of the
	// encryption port (purposes app.PurposeCredentials, app.PurposeInboundSecret).
	SealedCredentials   []byte
	SealedInboundSecret []byte
	Version             int64
}

// ChannelCreated: a channel was created. Stream "channel-<channelId>".
type ChannelCreated struct {
	ChannelID           string            `json:"channelId"`
	ScopeID             string            `json:"scopeId"`
	ScopePath           []string          `json:"scopePath"`
	Name                string            `json:"name"`
	Type                ChannelType       `json:"type"`
	Provider            string            `json:"provider"`
	From                string            `json:"from"`
	Config              map[string]string `json:"config,omitempty"`
	SealedCredentials   []byte            `json:"sealedCredentials,omitempty"`
	SealedInboundSecret []byte            `json:"sealedInboundSecret,omitempty"`
}

// EventType implements Event.
func (ChannelCreated) EventType() string { return TypeChannelCreated }

// ReplayChannel rebuilds a channel from its stream (nil when empty).
func ReplayChannel(tenantID string, h []Recorded) *Channel {
	var c *Channel
	for _, r := range h {
		if e, ok := r.Event.(ChannelCreated); ok {
			c = &Channel{ID: e.ChannelID, TenantID: tenantID, ScopeID: e.ScopeID, ScopePath: e.ScopePath,
				Name: e.Name, Type: e.Type, Provider: e.Provider, From: e.From, Config: e.Config,
				SealedCredentials: e.SealedCredentials, SealedInboundSecret: e.SealedInboundSecret}
		}
		if c != nil {
			c.Version = r.Version
		}
	}
	return c
}

// ValidChannelType reports whether t is a known channel type.
func ValidChannelType(t ChannelType) bool { return t == ChannelSMS || t == ChannelEmail }

// CheckChannelName validates a channel name: 1..200 characters after trimming.
func CheckChannelName(name string) (string, error) {
	n := strings.TrimSpace(name)
	switch {
	case n == "":
		return "", errs.Invalid(errs.FieldError{Field: "name", Code: CodeRequired})
	case len([]rune(n)) > 200:
		return "", errs.Invalid(errs.FieldError{Field: "name", Code: CodeTooLong, Params: map[string]any{"max": 200}})
	}
	return n, nil
}
