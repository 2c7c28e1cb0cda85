package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
)

// TestNoSecretAtRest runs a full walkthrough (with idempotency keys, so that
// every answer that carries a credential is kept for replay) on both stores,
// then reads every item of the store raw and looks for the secrets it
// handed out: the operator key and every API key, whole and its secret part.
func TestNoSecretAtRest(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			const operatorKey = "sbo_rawscan-operator-key-0123456789abcdef"
			dir := t.TempDir()
			app := buildOn(t, store, map[string]string{"SWITCHBOARD_DATA_DIR": dir, "SWITCHBOARD_OPERATOR_KEY": operatorKey})
			table := app.Config.Table
			app.Worker.Start()
			c := &client{t: t, h: app.Server}

			secrets := []string{operatorKey, strings.TrimPrefix(operatorKey, "sbo_")}
			for i, name := range []string{"Acme", "Globex", "Initech"} {
				on := c.must(200, "/commands/onboard-tenant", operatorKey, `{"name":"`+name+`","tier":"pooled"}`, "Idempotency-Key", "onboard-"+name)
				key := str(on.Body["apiKey"])
				// The replay still returns the key (as Stripe does): it is kept, encrypted.
				again := c.must(200, "/commands/onboard-tenant", operatorKey, `{"name":"`+name+`","tier":"pooled"}`, "Idempotency-Key", "onboard-"+name)
				if str(again.Body["apiKey"]) != key || again.Header.Get("Idempotent-Replayed") != "true" {
					t.Fatalf("replay of onboarding %d lost the key: %s", i, again.Raw)
				}
				_, secret, ok := auth.ParseAPIKey(key)
				if !ok || len(secret) < 40 {
					t.Fatalf("onboarding answered an API key of an unexpected form: %q", key[:min(len(key), 12)])
				}
				secrets = append(secrets, key, secret)
				root := str(on.Body["rootScopeId"])
				c.must(200, "/commands/create-scope", key, `{"parentScopeId":"`+root+`","name":"eu"}`, "Idempotency-Key", "scope-eu")
				eventually(t, 10*time.Second, "tenant active", func() bool {
					return c.must(200, "/queries/get-tenant", key, `{}`).Body["status"] == "active"
				})
			}
			app.Worker.Stop(context.Background())
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}

			var found []string
			check := func(where string, b []byte) {
				for _, s := range secrets {
					if bytes.Contains(b, []byte(s)) {
						found = append(found, where+" holds "+s[:min(len(s), 8)]+"...")
					}
				}
			}
			n := 0
			if store == "embedded" {
				path := filepath.Join(dir, "switchboard.db")
				raw, err := os.ReadFile(path) // the whole file, free pages included
				if err != nil {
					t.Fatal(err)
				}
				check("the store file", raw)
				n = scanBolt(t, path, check)
			} else {
				n = scanDynamo(t, table, check)
			}
			if n < 20 {
				t.Fatalf("read only %d raw items: the scan did not see the store", n)
			}
			if len(found) > 0 {
				t.Fatalf("secrets at rest in clear:\n%s", strings.Join(found, "\n"))
			}
			t.Logf("%d raw items read, none holds one of %d secrets", n, len(secrets))
		})
	}
}

// scanBolt walks every bucket of a bbolt file and checks every key and value.
func scanBolt(t *testing.T, path string, check func(string, []byte)) int {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	var walk func(name string, b *bolt.Bucket) error
	walk = func(name string, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			n++
			check(name+"/"+string(k), k)
			if v == nil {
				if sub := b.Bucket(k); sub != nil {
					return walk(name+"/"+string(k), sub)
				}
				return nil
			}
			check(name+"/"+string(k), v)
			return nil
		})
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name), b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// scanDynamo reads every item of the table (a test may scan) and checks every value.
func scanDynamo(t *testing.T, table string, check func(string, []byte)) int {
	endpoint, err := dynamotest.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	client := dynamotest.Client(endpoint, nil)
	n := 0
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			n++
			where := "item " + attrString(item["pk"]) + "/" + attrString(item["sk"])
			for name, v := range item {
				checkAttr(where+"."+name, v, check)
			}
		}
	}
	return n
}

func attrString(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func checkAttr(where string, v types.AttributeValue, check func(string, []byte)) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		check(where, []byte(v.Value))
	case *types.AttributeValueMemberB:
		check(where, v.Value)
	case *types.AttributeValueMemberSS:
		for _, s := range v.Value {
			check(where, []byte(s))
		}
	case *types.AttributeValueMemberL:
		for _, e := range v.Value {
			checkAttr(where, e, check)
		}
	case *types.AttributeValueMemberM:
		for k, e := range v.Value {
			checkAttr(where+"."+k, e, check)
		}
	}
}
