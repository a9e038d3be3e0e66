package sealer

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"forgelink/shared/forgelink"
)

// Cache remembers what Open returned for a while, so that a warm webhook
// function does not call KMS for every delivery of the same project. Keys
// are the SHA-256 of the ciphertext and the aad, so a changed record (a
// rotated secret) is a miss. Seal is not cached.
type Cache struct {
	inner forgelink.Sealer
	ttl   time.Duration
	max   int
	now   func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cacheEntry
}

type cacheEntry struct {
	plaintext []byte
	expires   time.Time
}

var _ forgelink.Sealer = (*Cache)(nil)

// NewCache wraps inner with a cache of at most max entries, each kept for ttl.
func NewCache(inner forgelink.Sealer, ttl time.Duration, max int) *Cache {
	return &Cache{inner: inner, ttl: ttl, max: max, now: time.Now, entries: make(map[[sha256.Size]byte]cacheEntry)}
}

// Seal seals with the wrapped Sealer.
func (c *Cache) Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	return c.inner.Seal(ctx, plaintext, aad)
}

// Open returns the cached plaintext, or opens with the wrapped Sealer and
// remembers the result. Failures are not cached.
func (c *Cache) Open(ctx context.Context, ciphertext, aad []byte) ([]byte, error) {
	h := sha256.New()
	var n [8]byte
	for i, l := 0, uint64(len(ciphertext)); i < 8; i++ {
		n[i] = byte(l >> (8 * i))
	}
	h.Write(n[:]) // length-prefix the ciphertext so (ct, aad) pairs cannot collide
	h.Write(ciphertext)
	h.Write(aad)
	var key [sha256.Size]byte
	h.Sum(key[:0])

	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return append([]byte(nil), e.plaintext...), nil
	}
	plaintext, err := c.inner.Open(ctx, ciphertext, aad)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, v := range c.entries { // drop expired ones, or everything if none expired
			if !now.Before(v.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[key] = cacheEntry{plaintext: append([]byte(nil), plaintext...), expires: now.Add(c.ttl)}
	return plaintext, nil
}
