package gateway

import (
	"encoding/json"

	"github.com/popconnect/popconnect/gateway/filter"
	"github.com/popconnect/popconnect/gateway/policy"
)

// bodyIDs extracts the national IDs a Verify or BatchLookup body names,
// for the audit record of a request refused before its body was parsed
// (unknown, suspended or expired agency, operation not allowed). It reads
// the body only up to them and returns how many bytes it read: a refusal
// must not cost what serving would, and nothing after the IDs matters to
// the audit. Members before the IDs are stepped over (validated, in linear
// time), not interpreted, so an ID is found wherever it is. What is not a
// valid ID, or a whole valid list, gives no IDs.
func bodyIDs(op policy.Operation, body []byte) (ids []string, read int) {
	var want string
	switch op {
	case policy.OperationVerify:
		want = "nationalId"
	case policy.OperationBatchLookup:
		want = "nationalIds"
	default:
		return nil, 0
	}
	read, _ = filter.MembersUntil(body, func(key, value []byte) error {
		if string(key) != want {
			return nil
		}
		if op == policy.OperationVerify {
			var id string
			if json.Unmarshal(value, &id) == nil && validNationalID(id) {
				ids = []string{id}
			}
			return filter.ErrStop
		}
		var list []string
		err := filter.Elements(value, func(elem []byte) error {
			var id string
			if len(list) == MaxBatch || json.Unmarshal(elem, &id) != nil || !validNationalID(id) {
				return filter.ErrSyntax
			}
			list = append(list, id)
			return nil
		})
		if err == nil {
			ids = list
		}
		return filter.ErrStop
	})
	return ids, read
}
