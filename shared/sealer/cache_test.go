package sealer

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"forgelink/shared/forgelink"
)

// countingSealer counts Opens of a real envelope sealer.
type countingSealer struct {
	forgelink.Sealer
	opens int
}

func (c *countingSealer) Open(ctx context.Context, ct, aad []byte) ([]byte, error) {
	c.opens++
	return c.Sealer.Open(ctx, ct, aad)
}

func TestCache(t *testing.T) {
	keys, err := OpenKeyFile(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	inner := &countingSealer{Sealer: NewEnvelope(keys)}
	c := NewCache(inner, time.Minute, 2)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	ct, _ := c.Seal(ctx, []byte("secret-a"), []byte("record-a"))

	for i := 0; i < 3; i++ {
		got, err := c.Open(ctx, ct, []byte("record-a"))
		if err != nil || string(got) != "secret-a" {
			t.Fatalf("Open = %q, %v", got, err)
		}
	}
	if inner.opens != 1 {
		t.Errorf("inner opens = %d after 3 cached opens, want 1", inner.opens)
	}
	// Another aad is another key, and a failure is not cached.
	if _, err := c.Open(ctx, ct, []byte("record-b")); err == nil {
		t.Fatal("Open with another record's aad succeeded")
	}
	if _, err := c.Open(ctx, ct, []byte("record-b")); err == nil {
		t.Fatal("a failed Open was cached as a success")
	}
	if inner.opens != 3 {
		t.Errorf("inner opens = %d, want 3 (failures go through)", inner.opens)
	}
	// Expiry.
	now = now.Add(2 * time.Minute)
	if _, err := c.Open(ctx, ct, []byte("record-a")); err != nil {
		t.Fatal(err)
	}
	if inner.opens != 4 {
		t.Errorf("inner opens = %d after expiry, want 4", inner.opens)
	}
	// The caller may scribble on what it got without changing the cache.
	got, _ := c.Open(ctx, ct, []byte("record-a"))
	copy(got, "XXXXXXXX")
	if again, _ := c.Open(ctx, ct, []byte("record-a")); string(again) != "secret-a" {
		t.Errorf("cache entry changed through a returned slice: %q", again)
	}
	// Bounded size.
	for i := 0; i < 5; i++ {
		ct, _ := c.Seal(ctx, []byte{byte(i)}, []byte{byte(i)})
		if _, err := c.Open(ctx, ct, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.entries); n > 2 {
		t.Errorf("cache holds %d entries, want at most 2", n)
	}
}
