package dynamostore

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Compression of the large binary attributes (events' and rows' data,
// outbox entries' payload). DynamoDB bills a write per started KB of the
// whole item (two inside a transaction) and a read per started 4 KB, so
// the JSON of a large item is stored compressed with raw DEFLATE (RFC 1951,
// no zlib or gzip header) under an attribute name of its own (attrDataZ,
// attrPayloadZ): an item holds either the plain attribute or the compressed
// one, never both, and readers accept both (items written before the
// compression have only the plain one).
const (
	// blobCompressMin is the smallest value that is compressed: 512 bytes.
	// An item's keys and other attributes take about 150 to 400 bytes, so
	// below it the item is mostly well under the 1 KB write unit and the
	// two hundred bytes or so DEFLATE could save seldom save a unit, while
	// every write and read of it would pay the compression's fixed cost
	// (about 15 µs to deflate even 300 bytes, mostly resetting the
	// compressor's tables, and 3.5 µs to inflate them).
	// Above it, values such as outbox publications (a message view as
	// JSON, ~0.9 KB in a 1.3 KB item) shrink to about 60% and the item
	// drops below the KB boundary: 2 write units to 1, in a transaction
	// 4 to 2.
	blobCompressMin = 512

	// blobLevel is the DEFLATE level: the default (6). Measured with
	// BenchmarkBlobLevels (pooled state, compression alone), against
	// BestSpeed (1): a 1.3 KB publication payload 791 vs 819 bytes
	// (-3.4%) for 24 vs 15 µs; a 20 KB HTML email 1,838 vs 2,010 bytes
	// (-8.6%) for ~105 vs ~40 µs; BestCompression (9) gains nothing on
	// the former and 3.5% on the latter for 50% more CPU. Inflating
	// costs the same at every level. A write unit (billed per started KB,
	// twice in a transaction, once more to delete an outbox entry) costs
	// thousands of times what the extra microseconds cost in Lambda, so
	// the denser output pays even when it moves few items below a KB
	// boundary.
	blobLevel = flate.DefaultCompression

	// blobMinSavingPct is the saving, in percent of the plain attribute
	// (name and value), below which a value is stored plain: compression
	// that saves less (incompressible content: random or already
	// compressed bytes) is not worth the readers' CPU.
	blobMinSavingPct = 10

	// blobMaxInflate bounds the decompressed size of a compressed attribute:
	// DynamoDB's item limit, which no plain value can exceed either (the
	// port's own limits, eventstore.MaxItemBytes and MaxOutboxPayload, are
	// below it). A corrupt or hostile item cannot make a reader allocate
	// more.
	blobMaxInflate = maxItemSize
)

// flateWriters and flateReaders keep DEFLATE state between items: a new
// writer allocates about 800 KB (its hash tables and window; ~780 µs) and a
// new reader about 45 KB (~15 µs); a reused one is reset. Compressing a 1.3 KB
// publication takes ~24 µs with pooled state, 200-300 µs with new state
// (BenchmarkBlobLevels, fresh-state).
var (
	flateWriters = sync.Pool{New: func() any {
		w, err := flate.NewWriter(nil, blobLevel)
		if err != nil {
			panic(err) // only for a level out of range: a constant
		}
		return w
	}}
	flateReaders = sync.Pool{New: func() any { return flate.NewReader(nil) }}
)

// putBlob sets the binary attribute of v (nothing when v is empty): the
// compressed form under zname when v is at least blobCompressMin bytes and
// compression saves at least blobMinSavingPct, else the plain form under name.
func putBlob(m map[string]types.AttributeValue, name, zname string, v []byte) {
	if len(v) >= blobCompressMin {
		if z := deflateBlob(v); z != nil && (len(zname)+len(z))*100 <= (len(name)+len(v))*(100-blobMinSavingPct) {
			m[zname] = &types.AttributeValueMemberB{Value: z}
			return
		}
	}
	putB(m, name, v)
}

// getBlob returns the value putBlob stored: the decompressed zname attribute
// when the item has it, else the plain name attribute (nil when neither).
// A zname attribute that is not binary, does not inflate, inflates beyond
// blobMaxInflate or carries trailing bytes is an error naming it.
func getBlob(m map[string]types.AttributeValue, name, zname string) ([]byte, error) {
	zv, ok := m[zname]
	if !ok {
		return getB(m, name), nil
	}
	z, ok := zv.(*types.AttributeValueMemberB)
	if !ok {
		return nil, fmt.Errorf("attribute %s: %T, not binary", zname, zv)
	}
	v, err := inflateBlob(z.Value)
	if err != nil {
		return nil, fmt.Errorf("attribute %s: %w", zname, err)
	}
	return v, nil
}

// deflateBlob returns v compressed with raw DEFLATE at blobLevel, or nil if
// compression fails (it cannot, into memory) or does not make v smaller.
func deflateBlob(v []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(v) / 2)
	w := flateWriters.Get().(*flate.Writer)
	defer flateWriters.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(v); err != nil {
		return nil
	}
	if err := w.Close(); err != nil {
		return nil
	}
	if buf.Len() >= len(v) {
		return nil
	}
	return buf.Bytes()
}

// inflateBlob decompresses raw DEFLATE data z, refusing output beyond
// blobMaxInflate bytes and input that goes on after the final block.
func inflateBlob(z []byte) ([]byte, error) {
	src := bytes.NewReader(z) // an io.ByteReader: the reader takes no byte past the stream
	r := flateReaders.Get().(io.ReadCloser)
	defer flateReaders.Put(r)
	if err := r.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	var out bytes.Buffer
	out.Grow(min(4*len(z), blobMaxInflate))
	n, err := out.ReadFrom(io.LimitReader(r, blobMaxInflate+1))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if n > blobMaxInflate {
		return nil, fmt.Errorf("inflate: more than %d bytes", blobMaxInflate)
	}
	if src.Len() > 0 {
		return nil, fmt.Errorf("inflate: %d bytes after the end of the stream", src.Len())
	}
	return out.Bytes(), nil
}
