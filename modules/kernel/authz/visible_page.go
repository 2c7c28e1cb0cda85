package authz

import "errors"

// ErrScopeTreeTooLarge is the answer of a scope tree (a tenant's every scope)
// too large to read for one call: lists that would read it ask for a scope.
var ErrScopeTreeTooLarge = errors.New("authz: the tenant has too many scopes to read them all")

// maxVisibleReads bounds the store pages VisiblePage reads for one answer.
const maxVisibleReads = 10

// VisiblePage answers one page of a list filtered to the items a caller may
// see (visible), for a caller that may not list everything (Visible): up to
// limit visible items from cursor on, and the cursor of the next page.
//
// The cursor never follows a hidden item when it can be helped: a store
// cursor is the position of the last item read, and a position can name
// the item (a scope id in a sort key), so an answer whose last read item is
// hidden is cut back to its last visible item by reading that page again
// with a smaller limit. It reads at most maxVisibleReads pages (plus that
// one), so a caller who sees little of a long list gets short pages and a
// cursor; only when no item in all of them is visible does the cursor follow
// a hidden one.
//
// fetch reads one page of at most n items after cursor and the cursor that
// follows it ("" at the end of the list).
func VisiblePage[T any](limit int, cursor string, fetch func(n int, cursor string) ([]T, string, error), visible func(T) bool) ([]T, string, error) {
	out := make([]T, 0, limit)
	for reads := 0; ; reads++ {
		items, next, err := fetch(limit-len(out), cursor)
		if err != nil {
			return nil, "", err
		}
		lastKept := -1
		for i, it := range items {
			if visible(it) {
				out = append(out, it)
				lastKept = i
			}
		}
		tailHidden := len(items) > 0 && lastKept != len(items)-1
		switch {
		case next == "":
			return out, "", nil // the end: nothing to leak
		case !tailHidden:
			if len(out) == limit || reads+1 >= maxVisibleReads {
				return out, next, nil
			}
		case len(out) == limit || (reads+1 >= maxVisibleReads && lastKept >= 0):
			// Cut back to the last visible item of this page: its cursor.
			_, cut, err := fetch(lastKept+1, cursor)
			if err != nil {
				return nil, "", err
			}
			return out, cut, nil
		case reads+1 >= maxVisibleReads:
			return out, next, nil // nothing visible in this page: a cursor anyway
		}
		cursor = next
	}
}
