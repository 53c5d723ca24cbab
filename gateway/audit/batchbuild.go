package audit

// SealBatch seals recs as the records firstSeq, firstSeq+1, … of stream,
// chained after prevChain (the chain of record firstSeq-1; "" when firstSeq
// is 1), under hashKey's chain key. It is for tests of sinks and verifiers,
// which need sealed batches without a Logger.
func SealBatch(hashKey []byte, stream string, firstSeq uint64, prevChain string, recs []*Record) *Batch {
	c := NewChainer(hashKey)
	b := &Batch{Stream: stream}
	prev := []byte(prevChain)
	for i, r := range recs {
		seq := firstSeq + uint64(i)
		start := len(b.Lines)
		b.Lines = appendRecord(b.Lines, r)
		b.Lines = appendSeal(b.Lines[:len(b.Lines)-2], stream, seq) // without "}\n"
		chain := c.nextOpen(nil, prev, b.Lines[start:])
		b.Lines = append(b.Lines, `,"chain":"`...)
		b.Lines = append(b.Lines, chain...)
		b.Lines = append(b.Lines, "\"}\n"...)
		b.Records = append(b.Records, Sealed{Record: r, Seq: seq, start: start, end: len(b.Lines)})
		prev = chain
	}
	return b
}
