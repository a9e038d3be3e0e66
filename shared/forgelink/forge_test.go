package forgelink

import (
	"errors"
	"strings"
	"testing"
)

func TestForgeError(t *testing.T) {
	cause := errors.New("cause")
	tests := []struct {
		in       error
		wantKind Kind
		wantMsg  string
	}{
		{E(Unauthorized, "Bad credentials", cause), Forbidden, "rejected the token"},
		{E(Forbidden, "Resource not accessible", cause), Forbidden, "Resource not accessible"},
		{E(NotFound, "x", cause), NotFound, "not found"},
		{E(Transient, "x", cause), Transient, "try again"},
		{E(Invalid, "key is invalid", cause), Upstream, "key is invalid"},
		{E(Conflict, "key is already in use", cause), Conflict, "already in use"},
		{cause, Internal, ""},
	}
	for _, tc := range tests {
		err := ForgeError(GitHub, "do it", tc.in)
		if KindOf(err) != tc.wantKind || !strings.Contains(MessageOf(err), tc.wantMsg) || !errors.Is(err, cause) {
			t.Errorf("ForgeError(%v) = %v (kind %v), want kind %v, message with %q, cause kept", tc.in, err, KindOf(err), tc.wantKind, tc.wantMsg)
		}
	}
}
