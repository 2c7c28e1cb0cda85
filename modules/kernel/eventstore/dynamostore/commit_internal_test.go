package dynamostore

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// TestMapError covers cancellation reasons DynamoDB Local does not produce
// (TransactionConflict) and servers that send reasons only in the message.
func TestMapError(t *testing.T) {
	p := &plan{about: []planItem{{kind: kindHead, what: "head"}, {kind: kindEvent, what: "event"}, {kind: kindIdem, what: "idem"}}}
	reasons := func(codes ...string) error {
		e := &types.TransactionCanceledException{Message: aws.String("Transaction cancelled")}
		for _, c := range codes {
			e.CancellationReasons = append(e.CancellationReasons, types.CancellationReason{Code: aws.String(c)})
		}
		return e
	}
	other := errors.New("network down")
	cases := []struct {
		name  string
		err   error
		want  error
		retry bool
	}{
		{"head condition", reasons("ConditionalCheckFailed", "None", "None"), eventstore.ErrConflict, false},
		{"idempotency condition", reasons("None", "None", "ConditionalCheckFailed"), eventstore.ErrDuplicate, false},
		{"duplicate wins over conflict", reasons("ConditionalCheckFailed", "None", "ConditionalCheckFailed"), eventstore.ErrDuplicate, false},
		{"condition wins over transaction conflict", reasons("ConditionalCheckFailed", "TransactionConflict", "None"), eventstore.ErrConflict, false},
		{"transaction conflict", reasons("None", "None", "TransactionConflict"), eventstore.ErrConflict, true},
		{"reasons in the message only", &types.TransactionCanceledException{Message: aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [None, None, ConditionalCheckFailed]")}, eventstore.ErrDuplicate, false},
		{"conflict exception", &types.TransactionConflictException{Message: aws.String("busy")}, eventstore.ErrConflict, true},
		{"validation reason", reasons("ValidationError", "None", "None"), nil, false},
		{"other error", other, other, false},
	}
	for _, tc := range cases {
		got, retry := p.mapError(tc.err)
		if tc.want == nil {
			if errors.Is(got, eventstore.ErrConflict) || errors.Is(got, eventstore.ErrDuplicate) || got == nil {
				t.Errorf("%s: got %v, want the raw error", tc.name, got)
			}
		} else if !errors.Is(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
		if retry != tc.retry {
			t.Errorf("%s: retry = %v, want %v", tc.name, retry, tc.retry)
		}
	}
}
