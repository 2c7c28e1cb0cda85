package rpc

import (
	"reflect"
	"sort"
)

// InputType is the Go type of the body an endpoint decodes (its In).
func (e *Endpoint) InputType() reflect.Type { return e.inputType }

// Endpoints lists the registered commands and queries, by kind then name:
// for catalogues (the actions a role editor offers) and for tests that must
// cover every endpoint (the isolation proof).
func (s *Server) Endpoints() []Endpoint {
	out := make([]Endpoint, 0, len(s.commands)+len(s.queries))
	for _, m := range []map[string]*Endpoint{s.commands, s.queries} {
		for _, e := range m {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}
