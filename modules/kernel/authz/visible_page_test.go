package authz_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
)

// list is a store list of items "v<n>" (visible) and "h<n>" (hidden) whose
// cursors are the last item read.
type list []string

func (l list) fetch(n int, cursor string) ([]string, string, error) {
	start := 0
	if cursor != "" {
		start = slices.Index(l, cursor) + 1
	}
	end := min(start+n, len(l))
	page := l[start:end]
	if end == len(l) {
		return page, "", nil
	}
	return page, page[len(page)-1], nil
}

func visible(s string) bool { return strings.HasPrefix(s, "v") }

func TestVisiblePage(t *testing.T) {
	var l list
	for i := range 40 {
		if i%3 == 1 {
			l = append(l, "v"+strconv.Itoa(i))
		} else {
			l = append(l, "h"+strconv.Itoa(i))
		}
	}
	var all, want []string
	for _, s := range l {
		if visible(s) {
			want = append(want, s)
		}
	}
	for _, limit := range []int{1, 2, 5, 50} {
		all = all[:0]
		cursor := ""
		for pages := 0; ; pages++ {
			items, next, err := authz.VisiblePage(limit, cursor, l.fetch, visible)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(items))
			}
			if next != "" && !visible(next) {
				t.Fatalf("limit %d: the cursor %q follows a hidden item", limit, next)
			}
			all = append(all, items...)
			if next == "" {
				break
			}
			if pages > 100 {
				t.Fatal("does not end")
			}
			cursor = next
		}
		if !slices.Equal(all, want) {
			t.Fatalf("limit %d: paged %v, want %v", limit, all, want)
		}
	}
	// Nothing visible: bounded reads, then an empty page with a cursor.
	var hidden list
	for i := range 100 {
		hidden = append(hidden, "h"+strconv.Itoa(i))
	}
	reads := 0
	items, next, err := authz.VisiblePage(5, "", func(n int, c string) ([]string, string, error) { reads++; return hidden.fetch(n, c) }, visible)
	if err != nil || len(items) != 0 || next == "" || reads > 10 {
		t.Fatalf("all hidden: %v %q %v after %d reads", items, next, err, reads)
	}
}
