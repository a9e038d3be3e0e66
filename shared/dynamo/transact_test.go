package dynamo

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"forgelink/shared/forgelink"
)

// scripted answers the n-th request with the n-th of its responses (the
// last one over and over) and counts the requests.
type scripted struct {
	bodies []string // "" means 200 {}; anything else is a 400 error body
	n      atomic.Int64
}

func (s *scripted) Do(r *http.Request) (*http.Response, error) {
	i := int(s.n.Add(1)) - 1
	body, status := s.bodies[min(i, len(s.bodies)-1)], http.StatusBadRequest
	if body == "" {
		body, status = "{}", http.StatusOK
	}
	return &http.Response{
		StatusCode: status,
		Header:     http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    r,
	}, nil
}

func cancelledBody(codes ...string) string {
	var reasons []string
	for _, c := range codes {
		reasons = append(reasons, `{"Code":"`+c+`"}`)
	}
	return `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",` +
		`"Message":"Transaction cancelled","CancellationReasons":[` + strings.Join(reasons, ",") + `]}`
}

func TestCreateProjectRetriesTransactionConflict(t *testing.T) {
	conflict := cancelledBody("TransactionConflict", "None")
	tests := []struct {
		name      string
		bodies    []string
		wantKind  forgelink.Kind // Internal means no error
		wantCalls int64
	}{
		{"conflict then success", []string{conflict, ""}, forgelink.Internal, 2},
		{"conflict then taken", []string{conflict, cancelledBody("ConditionalCheckFailed", "None")}, forgelink.Conflict, 2},
		{"conflicts throughout", []string{conflict}, forgelink.Transient, transactAttempts},
		{"taken", []string{cancelledBody("ConditionalCheckFailed", "TransactionConflict")}, forgelink.Conflict, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &scripted{bodies: tc.bodies}
			client := dynamodb.New(dynamodb.Options{
				Region:       "us-east-1",
				BaseEndpoint: aws.String("http://dynamodb.invalid"),
				Credentials:  aws.AnonymousCredentials{},
				HTTPClient:   fake,
			})
			s := New(client, Tables{Projects: "p", Deliveries: "d"})
			p := &forgelink.Project{Slug: forgelink.Slug{VCS: forgelink.GitHub, Org: "o", Repo: "r"}, HookID: "h"}
			err := s.CreateProject(t.Context(), p)
			switch {
			case tc.wantKind == forgelink.Internal && err != nil:
				t.Errorf("CreateProject: %v", err)
			case tc.wantKind != forgelink.Internal && forgelink.KindOf(err) != tc.wantKind:
				t.Errorf("CreateProject: got %v (kind %v), want kind %v", err, forgelink.KindOf(err), tc.wantKind)
			}
			if got := fake.n.Load(); got != tc.wantCalls {
				t.Errorf("sent %d requests, want %d", got, tc.wantCalls)
			}
		})
	}
}
