package kvlayout

import (
	"reflect"
	"testing"
)

func TestListChanges(t *testing.T) {
	b := func(ss ...string) [][]byte {
		var out [][]byte
		for _, s := range ss {
			out = append(out, []byte(s))
		}
		return out
	}
	str := func(bs [][]byte) []string {
		var out []string
		for _, x := range bs {
			out = append(out, string(x))
		}
		return out
	}
	for _, c := range []struct {
		name       string
		old, cur   [][]byte
		skip       int
		gone       []string
		addedIndex []int
	}{
		{"new row", nil, b("a", "b"), 0, nil, []int{0, 1}},
		{"unchanged", b("a", "b"), b("a", "b"), 0, nil, nil},
		{"a status move", b("all", "st/queued"), b("all", "st/sent"), 0, []string{"st/queued"}, []int{1}},
		{"a delete", b("a", "b"), nil, 0, []string{"a", "b"}, nil},
		{"a namespace prefix on the new keys", b("a", "b"), b("l/a", "l/c"), 2, []string{"b"}, []int{1}},
		{"reordered", b("a", "b"), b("b", "a"), 0, nil, nil},
	} {
		gone, added := ListChanges(c.old, c.cur, c.skip)
		if !reflect.DeepEqual(str(gone), c.gone) || !reflect.DeepEqual(added, c.addedIndex) {
			t.Errorf("%s: gone %q added %v, want %q %v", c.name, str(gone), added, c.gone, c.addedIndex)
		}
	}
}
