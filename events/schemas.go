// Package events holds the machine-readable contracts of Switchboard's events:
// JSON Schemas (draft 2020-12) of the domain event data, the integration
// events, the subscriber webhook bodies and the provider webhook bodies, kept
// in contracts/schemas and embedded here, and Validate to check a document
// against one of them. Tests of producers validate what they emit, so a change
// of shape that the contract does not describe fails a test.
//
// The schemas are strict (additionalProperties: false): they check producers.
// Consumers of the events must stay lenient and ignore fields they do not
// know (see contracts/messaging.md, "Versioning").
package events

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// BaseURL is the base of every schema's $id; a schema named n has the $id
// BaseURL + n + ".schema.json", and schemas refer to each other relatively.
const BaseURL = "https://schemas.switchboard.dev/events/"

const schemaDir = "contracts/schemas"
const schemaExt = ".schema.json"

//go:embed contracts/schemas/*.schema.json
var schemaFiles embed.FS

// ErrUnknownSchema is returned by Validate for a name no schema has.
var ErrUnknownSchema = errors.New("events: unknown schema")

// ErrInvalid wraps every validation failure (the document is not JSON, or
// does not match its schema). Compare with errors.Is.
var ErrInvalid = errors.New("events: document does not match its schema")

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema
	compileErr  error
)

// compile compiles every embedded schema once.
func compile() (map[string]*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		// Only the embedded schemas: nothing is ever loaded from the network
		// or the file system.
		c.UseLoader(noLoader{})
		names, err := Names()
		if err != nil {
			compileErr = err
			return
		}
		for _, n := range names {
			b, err := schemaFiles.ReadFile(path.Join(schemaDir, n+schemaExt))
			if err != nil {
				compileErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				compileErr = fmt.Errorf("events: schema %s: %w", n, err)
				return
			}
			if err := c.AddResource(BaseURL+n+schemaExt, doc); err != nil {
				compileErr = fmt.Errorf("events: schema %s: %w", n, err)
				return
			}
		}
		m := make(map[string]*jsonschema.Schema, len(names))
		for _, n := range names {
			s, err := c.Compile(BaseURL + n + schemaExt)
			if err != nil {
				compileErr = fmt.Errorf("events: compile schema %s: %w", n, err)
				return
			}
			m[n] = s
		}
		compiled = m
	})
	return compiled, compileErr
}

// noLoader refuses every URL: all schemas are added as resources up front.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("events: schema %s is not embedded", url)
}

// Names lists the embedded schemas by name (the file name without
// ".schema.json", e.g. "message", "message.delivered", "webhook",
// "messaging.message-accepted"), sorted.
func Names() ([]string, error) {
	entries, err := fs.ReadDir(schemaFiles, schemaDir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), schemaExt); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Schema returns the raw JSON of the named schema.
func Schema(name string) ([]byte, error) {
	b, err := schemaFiles.ReadFile(path.Join(schemaDir, name+schemaExt))
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSchema, name)
	}
	return b, nil
}

// Validate checks doc (one JSON value) against the named schema. It returns
// nil when doc matches; an error wrapping ErrInvalid, whose text names every
// failing location, when it does not; ErrUnknownSchema for an unknown name.
func Validate(schemaName string, doc []byte) error {
	schemas, err := compile()
	if err != nil {
		return err
	}
	s, ok := schemas[schemaName]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSchema, schemaName)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("%w: %s: not JSON: %v", ErrInvalid, schemaName, err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, schemaName, err)
	}
	return nil
}
