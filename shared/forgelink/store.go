package forgelink

import "context"

// Store persists projects and deliveries. Every write that must not happen
// twice is conditional, so concurrent callers get exactly one winner and
// the others a Conflict.
type Store interface {
	// CreateProject stores a new project and its hook id. Conflict if the
	// slug or the hook id is taken; Invalid without a hook id. p.Version
	// becomes 1.
	CreateProject(ctx context.Context, p *Project) error
	// GetProject returns the project, or NotFound.
	GetProject(ctx context.Context, slug Slug) (*Project, error)
	// GetProjectByHookID returns the project whose webhook URL carries
	// hookID, or NotFound.
	GetProjectByHookID(ctx context.Context, hookID string) (*Project, error)
	// UpdateProject replaces the project if its stored Version equals
	// p.Version, then increments p.Version. Conflict if it changed
	// meanwhile, NotFound if it is gone. The hook id cannot change
	// (Invalid).
	UpdateProject(ctx context.Context, p *Project) error
	// DeleteProject removes the project and its hook id. NotFound if absent.
	DeleteProject(ctx context.Context, slug Slug) error
	// ListProjects returns every project, ordered by slug.
	ListProjects(ctx context.Context) ([]*Project, error)

	// CreateDelivery stores d if no delivery with its (HookID, ID) exists
	// and has not expired; otherwise Conflict. Invalid without a hook id,
	// an id or an ExpiresAt. DynamoDB compares expiry in whole seconds.
	CreateDelivery(ctx context.Context, d *Delivery) error
	// GetDelivery returns the delivery, or NotFound (also once expired).
	GetDelivery(ctx context.Context, hookID, id string) (*Delivery, error)
	// SetDeliveryState records the delivery's new state. NotFound if absent
	// or expired.
	SetDeliveryState(ctx context.Context, hookID, id string, state DeliveryState) error
}

// Sealer encrypts small secrets (private keys, webhook secrets) for storage.
// aad binds a ciphertext to its record: Open with other aad fails.
type Sealer interface {
	Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Open(ctx context.Context, ciphertext, aad []byte) ([]byte, error)
}

// Inbox accepts webhook deliveries for trigger evaluation.
type Inbox interface {
	// Accept stores d and queues it for evaluation as one durable step:
	// once it returns nil, a crash loses nothing. Conflict, changing
	// nothing, when (d.HookID, d.ID) was accepted before.
	Accept(ctx context.Context, d *Delivery) error
	// Requeue queues an accepted delivery for evaluation again - a
	// redelivery of one not yet decided, or a retry of a dead one - and
	// leaves it Received. Conflict, changing nothing, when the queue knows
	// the delivery is waiting or being evaluated right now.
	Requeue(ctx context.Context, d *Delivery) error
}

// Queue hands messages to the next function (intake → trigger).
type Queue interface {
	Publish(ctx context.Context, m *Message) error
}
