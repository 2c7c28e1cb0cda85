// Package paging is the API's rules for pages of lists, the same for every
// module: the default and the largest page size, and the cursor as answered
// (null on the last page).
package paging

import "github.com/switchboard-dev/switchboard/modules/kernel/errs"

// Page sizes of lists.
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// Limit applies the default page size (for 0) and checks the range
// 1..MaxLimit (400 errors.validation.range on "limit").
func Limit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultLimit, nil
	case limit < 1 || limit > MaxLimit:
		return 0, errs.Invalid(errs.FieldError{Field: "limit", Code: "errors.validation.range",
			Params: map[string]any{"min": 1, "max": MaxLimit}})
	}
	return limit, nil
}

// Next is a page's cursor as answered: nil (null) on the last page.
func Next(next string) *string {
	if next == "" {
		return nil
	}
	return &next
}
