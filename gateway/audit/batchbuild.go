package audit

// SealBatch seals recs as the records firstSeq, firstSeq+1, … of stream,
// chained after prevChain (the chain of record firstSeq-1; "" when firstSeq
// is 1), under hashKey's chain key, as the Logger does. It is for tests of
// sinks and verifiers, which need sealed batches without a Logger.
func SealBatch(hashKey []byte, stream string, firstSeq uint64, prevChain string, recs []*Record) *Batch {
	c := NewChainer(hashKey)
	b := &Batch{Stream: stream}
	prev := []byte(prevChain)
	for i, r := range recs {
		prev = b.appendSealed(c, firstSeq+uint64(i), prev, appendRecord(nil, r), r)
	}
	return b
}
