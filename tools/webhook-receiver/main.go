// Command webhook-receiver is a small subscriber endpoint for trying
// Switchboard's webhooks locally: it verifies every POST with the
// subscription's secret (Standard Webhooks, the reference library), prints
// the verified event as one line, and answers 204 (401 when the signature
// does not verify).
//
//	go run ./tools/webhook-receiver -addr 127.0.0.1:9090 -secret whsec_...
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9090", "listen address")
	secret := flag.String("secret", os.Getenv("WEBHOOK_SECRET"), "the subscription's secret (whsec_...); or WEBHOOK_SECRET")
	flag.Parse()
	if *secret == "" {
		log.Fatal("webhook-receiver: -secret (or WEBHOOK_SECRET) is required")
	}
	wh, err := standardwebhooks.NewWebhook(*secret)
	if err != nil {
		log.Fatalf("webhook-receiver: bad secret: %v", err)
	}
	http.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		if err := wh.Verify(body, r.Header); err != nil {
			fmt.Printf("REJECTED webhook-id=%s: %v\n", r.Header.Get("webhook-id"), err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Printf("verified webhook-id=%s %s\n", r.Header.Get("webhook-id"), body)
		w.WriteHeader(http.StatusNoContent)
	})
	fmt.Printf("webhook-receiver on http://%s (verifying with the given secret)\n", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
