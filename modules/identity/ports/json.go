package ports

import (
	"encoding/json"
	"net/http"
)

// writeJSON writes v with status 200.
func writeJSON(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
