package forgelink

import "time"

// EventType is the normalized kind of a VCS event.
type EventType string

// The normalized event types, the same for GitHub and Bitbucket.
const (
	BranchPush   EventType = "push"          // commits pushed to (or a new) branch
	TagPush      EventType = "tag"           // a tag created or moved
	BranchDelete EventType = "branch_delete" // a branch deleted
	TagDelete    EventType = "tag_delete"    // a tag deleted
	PullRequest  EventType = "pull_request"  // see PRAction
)

// PRAction is what happened to a pull request.
type PRAction string

// The pull-request actions forgelink acts on.
const (
	PROpened      PRAction = "opened"
	PRSynchronize PRAction = "synchronize" // new commits on the head branch
	PRReopened    PRAction = "reopened"
	PRClosed      PRAction = "closed" // closed without merging (declined)
	PRMerged      PRAction = "merged"
	PREdited      PRAction = "edited" // e.g. its base branch changed
)

// Event is one normalized VCS event. A single delivery may carry several
// (a Bitbucket push names every ref it changed).
type Event struct {
	Type EventType `json:"type"`
	// Branch is the pushed branch, or a pull request's head branch.
	Branch string `json:"branch,omitempty"`
	// Tag is the pushed or deleted tag.
	Tag string `json:"tag,omitempty"`
	// Revision is the commit the event is about (the new head).
	Revision string `json:"revision,omitempty"`
	// Before is the previous head, when the VCS says.
	Before string `json:"before,omitempty"`
	// Message is the head commit's message, used for [ci skip].
	Message string `json:"message,omitempty"`
	// Actor is the login (or Bitbucket nickname) of who caused the event.
	Actor string `json:"actor,omitempty"`
	// DefaultBranch is the repository's default branch as the payload names it ("" if it does not).
	DefaultBranch string `json:"default_branch,omitempty"`
	// PR is set for pull-request events.
	PR *PR `json:"pr,omitempty"`
}

// PR describes the pull request of a PullRequest event.
type PR struct {
	Number     int      `json:"number"`
	Action     PRAction `json:"action"`
	BaseBranch string   `json:"base_branch"`
	// HeadRepo is the full name of the repository the head branch lives in.
	HeadRepo string `json:"head_repo,omitempty"`
	// Fork is true when the head branch lives in another repository.
	Fork bool `json:"fork"`
}

// DeliveryState tracks a delivery from intake to its decision.
type DeliveryState string

// Delivery states. Intake accepts a delivery Received and queued, in one
// durable step; the queue marks it Decided once trigger evaluation
// recorded its pipelines or skips, or Dead when evaluation failed every
// attempt. A redelivery of one that is not Decided queues it again, so
// nothing accepted is lost to a queue or process failure.
const (
	Received DeliveryState = "received"
	Decided  DeliveryState = "decided"
	Dead     DeliveryState = "dead"
)

// DeliveryTTL is how long a delivery id is remembered for de-duplication:
// GitHub redelivers up to 3 days back, GitHub Enterprise Server 7.
const DeliveryTTL = 8 * 24 * time.Hour

// Delivery is one accepted webhook delivery. It is keyed by (HookID, ID):
// GitHub reuses delivery ids across hooks and on redelivery.
type Delivery struct {
	HookID  string        `json:"hook_id"`
	ID      string        `json:"id"`
	Project string        `json:"project"` // slug string
	Event   string        `json:"event"`   // the VCS's event name, e.g. "push", "repo:push"
	Events  []Event       `json:"events"`
	State   DeliveryState `json:"state"`
	// ReceivedAt is when intake accepted it; ExpiresAt when it may be forgotten.
	ReceivedAt time.Time `json:"received_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Message returns the queue message that hands d to trigger evaluation.
func (d *Delivery) Message() *Message {
	return &Message{HookID: d.HookID, DeliveryID: d.ID, Project: d.Project, Event: d.Event, ReceivedAt: d.ReceivedAt, Events: d.Events}
}

// Message is what intake enqueues for the trigger function: enough to load
// the delivery, and the events so a consumer need not read the store first.
type Message struct {
	HookID     string    `json:"hook_id"`
	DeliveryID string    `json:"delivery_id"`
	Project    string    `json:"project"`
	Event      string    `json:"event"` // the VCS's event name
	ReceivedAt time.Time `json:"received_at"`
	Events     []Event   `json:"events"`
}

// QueueEntry is a delivery's message in the one-process server's durable
// intake queue.
type QueueEntry = Queued[Message]

// StatusQueueEntry is a status request in the one-process server's durable
// status queue.
type StatusQueueEntry = Queued[StatusRequest]

// Queued is a message in one of the one-process server's durable queues:
// the message and what its attempts so far came to.
type Queued[T any] struct {
	Message T `json:"message"`
	// Attempts counts the failed tries so far.
	Attempts int `json:"attempts"`
	// LastError is why the last try failed.
	LastError string `json:"last_error,omitempty"`
	// Dead is set once the entry failed every allowed try; a delivery
	// waits for a retry (POST .../deliveries/:id/retry).
	Dead bool `json:"dead,omitempty"`
	// DueAt is when the next try may start.
	DueAt time.Time `json:"due_at"`
}
