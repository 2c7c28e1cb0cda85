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

// Limit applies the default page size when the input has no "limit" (nil)
// and checks the range 1..MaxLimit (400 errors.validation.range on "limit"):
// a "limit" of 0 is refused as the contract's 1..100 says, not read as the
// default (a list input's Limit is a *int so that the two differ).
func Limit(limit *int) (int, error) {
	switch {
	case limit == nil:
		return DefaultLimit, nil
	case *limit < 1 || *limit > MaxLimit:
		return 0, errs.Invalid(errs.FieldError{Field: "limit", Code: "errors.validation.range",
			Params: map[string]any{"min": 1, "max": MaxLimit}})
	}
	return *limit, nil
}

// Next is a page's cursor as answered: nil (null) on the last page.
func Next(next string) *string {
	if next == "" {
		return nil
	}
	return &next
}
