// Package lru is a small least-recently-used map for the kernel's caches
// (the envelope's data keys, the tenant resources resolver). It is not safe
// for concurrent use: its owner guards it with its own mutex.
package lru

import "container/list"

// Cache holds at most Max entries; putting one more drops the least
// recently used.
type Cache[K comparable, V any] struct {
	max int
	ll  *list.List
	m   map[K]*list.Element
}

type item[K comparable, V any] struct {
	k K
	v V
}

// New returns an empty cache of at most n entries (at least 1).
func New[K comparable, V any](n int) *Cache[K, V] {
	return &Cache[K, V]{max: max(n, 1), ll: list.New(), m: make(map[K]*list.Element)}
}

// Get returns the value of k and marks it used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	if el, ok := c.m[k]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*item[K, V]).v, true
	}
	var zero V
	return zero, false
}

// Put sets the value of k, dropping the least recently used entry when the
// cache is full.
func (c *Cache[K, V]) Put(k K, v V) {
	if el, ok := c.m[k]; ok {
		el.Value.(*item[K, V]).v = v
		c.ll.MoveToFront(el)
		return
	}
	c.m[k] = c.ll.PushFront(&item[K, V]{k: k, v: v})
	for c.ll.Len() > c.max {
		el := c.ll.Back()
		c.ll.Remove(el)
		delete(c.m, el.Value.(*item[K, V]).k)
	}
}

// Remove drops k.
func (c *Cache[K, V]) Remove(k K) {
	if el, ok := c.m[k]; ok {
		c.ll.Remove(el)
		delete(c.m, k)
	}
}

// Len is the number of entries.
func (c *Cache[K, V]) Len() int { return c.ll.Len() }
