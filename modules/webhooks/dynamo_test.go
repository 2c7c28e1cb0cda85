package webhooks_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
)

// The fan-out, the idempotency keys and the keyed (and write-sharded) lists
// behave the same on DynamoDB (DynamoDB Local of the test run).
func TestOnDynamoDB(t *testing.T) {
	e := newDynamoEnv(t)
	tn := e.onboard("Acme")
	eu := e.scope(tn, tn.Root, "EU")
	us := e.scope(tn, tn.Root, "US")
	rcv := newReceiver(t)
	root := e.subscribe(tn, tn.Root, rcv.URL+"/root", "*")
	inEU := e.subscribe(tn, eu, rcv.URL+"/eu", "message.sent")
	inUS := e.subscribe(tn, us, rcv.URL+"/us", "*")

	var events []string
	for i := 0; i < 5; i++ {
		ev := e.event(tn, "message.sent", []string{tn.Root, eu}, fmt.Sprintf("msg_%d", i))
		events = append(events, ev.ID)
		e.publish(ev)
		e.publish(ev) // delivered twice: one delivery per subscription
	}
	e.drain()
	if got := strings.Join(paths(rcv), " "); got != strings.Repeat("/eu ", 5)+strings.TrimSpace(strings.Repeat("/root ", 5)) {
		t.Fatalf("requests: %s", got)
	}
	for _, rq := range rcv.requests() {
		secret := root.Secret
		if rq.Path == "/eu" {
			secret = inEU.Secret
		}
		if err := verify(secret, rq); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.deliveries(tn, inUS.SubscriptionID)); n != 0 {
		t.Fatalf("a sibling scope's subscription got %d deliveries", n)
	}
	// Each scope's set of enabled subscriptions is the head row of its
	// stream (no head item on DynamoDB), read strongly consistent.
	for scope, sub := range map[string]string{tn.Root: root.SubscriptionID, eu: inEU.SubscriptionID, us: inUS.SubscriptionID} {
		if row := e.scopeSet(tn.ID, scope); len(row.SubscriptionIDs) != 1 || row.SubscriptionIDs[0] != sub || row.Version != 1 {
			t.Fatalf("scope set of %s: %+v", scope, row)
		}
	}
	// Deliveries newest first across the shards of the list
	// (adapters.DeliveriesList.Shards), in pages of 2.
	var got []string
	cursor := ""
	for i := 0; i < 10; i++ {
		in := map[string]any{"subscriptionId": root.SubscriptionID, "limit": 2}
		if cursor != "" {
			in["cursor"] = cursor
		}
		status, body, raw := e.call("queries", "list-deliveries", tn.Token, in)
		if status != 200 {
			t.Fatalf("%d %s", status, raw)
		}
		for _, it := range body["items"].([]any) {
			m := it.(map[string]any)
			if m["status"] != "succeeded" {
				t.Fatalf("delivery = %v", m)
			}
			got = append(got, m["eventId"].(string))
		}
		if body["nextCursor"] == nil {
			break
		}
		cursor = body["nextCursor"].(string)
	}
	if strings.Join(got, " ") != strings.Join(reverse(events), " ") {
		t.Fatalf("deliveries %v, want %v", got, reverse(events))
	}
	if subs := e.subscriptions(tn, ""); len(subs) != 3 || subs[0]["subscriptionId"] != inUS.SubscriptionID {
		t.Fatalf("subscriptions = %v", subs)
	}
	if subs := e.subscriptions(tn, eu); len(subs) != 1 || subs[0]["subscriptionId"] != inEU.SubscriptionID {
		t.Fatalf("EU's subscriptions = %v", subs)
	}
}

// The same on DynamoDB: concurrent creations in one scope conflict on the
// set's row (its version condition) and all join.
func TestConcurrentSubscriptionsOnDynamoDB(t *testing.T) {
	concurrentSubscriptionsJoinTheSet(t, newDynamoEnv(t))
}

// newDynamoEnv is an env on a fresh table of DynamoDB Local (deleted after
// the test), with few outbox shards: every drain step reads them all, and
// these tests measure behaviour, not capacity (the production count is
// dynamostore.DefaultOutboxShards).
func newDynamoEnv(t *testing.T) *env {
	t.Helper()
	return newDynamoEnvWith(t, options{allowPrivate: true})
}

func newDynamoEnvWith(t *testing.T, o options) *env {
	t.Helper()
	client, table := dynamotest.Table(t, "switchboard-webhooks-test")
	return newEnvOn(t, dynamostore.New(client, table, dynamostore.WithOutboxShards(8)), o)
}
