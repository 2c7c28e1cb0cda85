package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// DynamoDB limits checked before a commit is sent.
const (
	maxItemSize        = 400 * 1024      // one item
	maxTransactionSize = 4 * 1024 * 1024 // all items of one TransactWriteItems
	maxPKBytes         = 2048            // partition key value
	maxSKBytes         = 1024            // sort key value
)

// conflictRetries bounds the re-sends of a transaction cancelled only by a
// concurrent transaction (TransactionConflict): after it, the loser sees the
// winner's items and fails its conditions with the right error.
const conflictRetries = 4

// itemKind tells what one transaction item is, to map its cancellation reason.
type itemKind int

const (
	kindHead itemKind = iota
	kindEvent
	kindRecord
	kindOutbox
	kindIdem
)

type planItem struct {
	kind itemKind
	what string // for error messages: "stream x at version 3", "record c/k", ...
}

// plan is a validated commit, ready to send.
type plan struct {
	items []types.TransactWriteItem
	about []planItem // parallel to items
}

// Commit implements eventstore.Appender with exactly one TransactWriteItems
// call (re-sent only when cancelled by a concurrent transaction). An empty
// commit writes nothing and makes no call. On success the events of c.Appends
// carry their tenant, stream and assigned versions.
func (s *Store) Commit(ctx context.Context, c *eventstore.Commit) error {
	if c == nil {
		return fmt.Errorf("commit: nil commit: %w", eventstore.ErrInvalid)
	}
	if c.Empty() {
		return nil
	}
	p, err := s.plan(c)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for attempt := 0; ; attempt++ {
		// A fresh input each time: the SDK fills in ClientRequestToken, which
		// must differ between our re-sends (its own retries keep it).
		_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: p.items})
		if err == nil {
			break
		}
		mapped, retry := p.mapError(err)
		if !retry || attempt >= conflictRetries {
			return fmt.Errorf("commit: %w", mapped)
		}
		backoff := time.Duration(5<<attempt)*time.Millisecond + rand.N(5*time.Millisecond)
		select {
		case <-ctx.Done():
			return fmt.Errorf("commit: %w", errors.Join(mapped, ctx.Err()))
		case <-time.After(backoff):
		}
	}
	for i := range c.Appends {
		a := &c.Appends[i]
		for j := range a.Events {
			a.Events[j].TenantID = c.TenantID
			a.Events[j].StreamID = a.StreamID
			a.Events[j].Version = a.ExpectedVersion + int64(j) + 1
		}
	}
	return nil
}

// plan validates c and builds its transaction items. It makes no call.
func (s *Store) plan(c *eventstore.Commit) (*plan, error) {
	if err := checkTenant(c.TenantID); err != nil {
		return nil, err
	}
	if err := eventstore.CheckHeadRecords(c); err != nil {
		return nil, err
	}
	if err := eventstore.CheckCommitBytes(c); err != nil {
		return nil, err
	}
	n := len(c.Records) + len(c.Outbox)
	if c.Idempotency != nil {
		n++
	}
	for _, a := range c.Appends {
		n += 1 + len(a.Events)
	}
	if n > eventstore.MaxCommitItems {
		return nil, fmt.Errorf("%d items (appends count one more each), more than %d: %w", n, eventstore.MaxCommitItems, eventstore.ErrInvalid)
	}
	p := &plan{items: make([]types.TransactWriteItem, 0, n), about: make([]planItem, 0, n)}
	seen := make(map[[2]string]bool, n)
	size := 0
	add := func(kind itemKind, what string, it types.TransactWriteItem, key map[string]types.AttributeValue, item map[string]types.AttributeValue) error {
		pk, sk := getS(key, AttrPK), getS(key, AttrSK)
		if len(pk) > maxPKBytes || len(sk) > maxSKBytes {
			return fmt.Errorf("%s: key longer than DynamoDB allows: %w", what, eventstore.ErrInvalid)
		}
		k := [2]string{pk, sk}
		if seen[k] {
			return fmt.Errorf("%s: written twice in one commit: %w", what, eventstore.ErrInvalid)
		}
		seen[k] = true
		if item != nil {
			sz := ItemSize(item)
			if sz > maxItemSize {
				return fmt.Errorf("%s: item of %d bytes: %w", what, sz, eventstore.ErrTooLarge)
			}
			size += sz
		} else {
			size += ItemSize(key)
		}
		p.items = append(p.items, it)
		p.about = append(p.about, planItem{kind: kind, what: what})
		return nil
	}

	streams := make(map[string]bool, len(c.Appends))
	// The appends whose version is kept on a row of the commit (HeadRecord),
	// by the row's collection and key: that row's Put carries the condition
	// and the version instead of a head item.
	onRows := map[eventstore.RecordRef]*eventstore.StreamAppend{}
	for i := range c.Appends {
		a := &c.Appends[i]
		if a.StreamID == "" {
			return nil, fmt.Errorf("append %d: empty stream id: %w", i, eventstore.ErrInvalid)
		}
		if streams[a.StreamID] {
			return nil, fmt.Errorf("append %s: stream appended twice: %w", a.StreamID, eventstore.ErrInvalid)
		}
		streams[a.StreamID] = true
		if a.ExpectedVersion < 0 {
			return nil, fmt.Errorf("append %s: negative expected version %d: %w", a.StreamID, a.ExpectedVersion, eventstore.ErrInvalid)
		}
		if len(a.Events) == 0 {
			return nil, fmt.Errorf("append %s: no events: %w", a.StreamID, eventstore.ErrInvalid)
		}
		for j := range a.Events {
			e := &a.Events[j]
			if e.Type == "" {
				return nil, fmt.Errorf("append %s: event %d without type: %w", a.StreamID, j, eventstore.ErrInvalid)
			}
			if len(e.Data) > eventstore.MaxItemBytes {
				return nil, fmt.Errorf("append %s: event %d data of %d bytes: %w", a.StreamID, j, len(e.Data), eventstore.ErrTooLarge)
			}
		}
		pk := streamPK(c.TenantID, a.StreamID)
		if a.HeadRecord != nil {
			onRows[*a.HeadRecord] = a // (CheckHeadRecords: at most one append per row)
		} else if err := s.addHead(a, pk, add); err != nil {
			return nil, err
		}
		if err := s.appendEvents(a, pk, add); err != nil {
			return nil, err
		}
	}

	for i := range c.Records {
		r := &c.Records[i]
		if r.Collection == "" || r.Key == "" {
			return nil, fmt.Errorf("record %d: empty collection or key: %w", i, eventstore.ErrInvalid)
		}
		what := "record " + r.Collection + "/" + r.Key
		if r.Global {
			what = "global " + what
		}
		if strings.Contains(r.Collection, keySep) {
			return nil, fmt.Errorf("%s: collection contains %q: %w", what, keySep, eventstore.ErrInvalid)
		}
		if err := eventstore.ValidateLists(*r); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if r.Delete {
			if r.IfAbsent {
				return nil, fmt.Errorf("%s: delete with IfAbsent: %w", what, eventstore.ErrInvalid)
			}
			key := getKey(encodeRecord(c.TenantID, &eventstore.Record{Collection: r.Collection, Key: r.Key, Global: r.Global}))
			del := &types.Delete{TableName: &s.table, Key: key}
			if err := add(kindRecord, what, types.TransactWriteItem{Delete: del}, key, nil); err != nil {
				return nil, err
			}
			continue
		}
		item, err := putItem(c.TenantID, r, what)
		if err != nil {
			return nil, err
		}
		put := &types.Put{TableName: &s.table, Item: item}
		if r.IfAbsent {
			// An expired row counts as absent, as reads see it (DynamoDB's
			// TTL deletes it some time later); expiresAtNs is absent on rows
			// that never expire, which makes the comparison false.
			put.ConditionExpression = aws.String("attribute_not_exists(pk) OR #exp <= :now")
			put.ExpressionAttributeNames = map[string]string{"#exp": attrExpiresAtNs}
			put.ExpressionAttributeValues = map[string]types.AttributeValue{":now": num(s.clock.Now().UnixNano())}
		}
		if a := onRows[eventstore.RecordRef{Collection: r.Collection, Key: r.Key}]; a != nil && !r.Global {
			what = keepVersion(put, a)
		} else if r.Source != nil {
			what = keepSource(put, r.Source, what)
		}
		if err := add(kindRecord, what, types.TransactWriteItem{Put: put}, item, item); err != nil {
			return nil, err
		}
	}

	for i := range c.Outbox {
		e := c.Outbox[i] // a copy: the tenant is filled in below
		if e.TenantID == "" {
			e.TenantID = c.TenantID
		}
		if e.TenantID != c.TenantID {
			return nil, fmt.Errorf("outbox %s: tenant %q in a commit of tenant %q: %w", e.ID, e.TenantID, c.TenantID, eventstore.ErrInvalid)
		}
		if e.ID == "" || e.Type == "" {
			return nil, fmt.Errorf("outbox %d: empty id or type: %w", i, eventstore.ErrInvalid)
		}
		if len(e.Payload) > eventstore.MaxOutboxPayload {
			return nil, fmt.Errorf("outbox %s: payload of %d bytes, more than %d: %w", e.ID, len(e.Payload), eventstore.MaxOutboxPayload, eventstore.ErrTooLarge)
		}
		item := encodeOutbox(&e, s.outboxShards)
		put := &types.Put{TableName: &s.table, Item: item}
		if err := add(kindOutbox, "outbox "+e.ID, types.TransactWriteItem{Put: put}, item, item); err != nil {
			return nil, err
		}
	}

	if rec := c.Idempotency; rec != nil {
		if rec.Key == "" {
			return nil, fmt.Errorf("idempotency: empty key: %w", eventstore.ErrInvalid)
		}
		ns := rec.TenantID // the record's namespace; "" is the commit's tenant
		if ns == "" {
			ns = c.TenantID
		}
		if err := checkTenant(ns); err != nil {
			return nil, fmt.Errorf("idempotency %s: namespace: %w", rec.Key, err)
		}
		if len(rec.Body) > eventstore.MaxItemBytes {
			return nil, fmt.Errorf("idempotency %s: body of %d bytes: %w", rec.Key, len(rec.Body), eventstore.ErrTooLarge)
		}
		item := encodeIdem(ns, rec)
		put := &types.Put{
			TableName: &s.table,
			Item:      item,
			// An expired record may be replaced; expiresAtNs is absent on
			// records that never expire, which makes the comparison false.
			ConditionExpression:       aws.String("attribute_not_exists(pk) OR #exp <= :now"),
			ExpressionAttributeNames:  map[string]string{"#exp": attrExpiresAtNs},
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(s.clock.Now().UnixNano())},
		}
		if err := add(kindIdem, "idempotency "+rec.Key, types.TransactWriteItem{Put: put}, item, item); err != nil {
			return nil, err
		}
	}

	if size > maxTransactionSize {
		return nil, fmt.Errorf("%d bytes in one transaction, more than %d: %w", size, maxTransactionSize, eventstore.ErrTooLarge)
	}
	return p, nil
}

// getKey returns the table key (pk, sk) of an item.
func getKey(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: item[AttrPK], AttrSK: item[AttrSK]}
}

// reasonList finds the "[A, B, ...]" list in a TransactionCanceledException
// message, for servers that send no structured CancellationReasons.
var reasonList = regexp.MustCompile(`\[([A-Za-z, ]*)\]`)

// mapError turns a failed TransactWriteItems into the port's errors, and tells
// whether the transaction was cancelled only by a concurrent transaction
// (worth re-sending).
func (p *plan) mapError(err error) (mapped error, retry bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		if isCode[*types.TransactionConflictException](err) {
			return fmt.Errorf("%w (%w)", eventstore.ErrConflict, err), true
		}
		return err, false
	}
	codes := make([]string, len(tce.CancellationReasons))
	for i, r := range tce.CancellationReasons {
		codes[i] = aws.ToString(r.Code)
	}
	if len(codes) == 0 {
		if m := reasonList.FindStringSubmatch(tce.ErrorMessage()); m != nil {
			for c := range strings.SplitSeq(m[1], ",") {
				codes = append(codes, strings.TrimSpace(c))
			}
		}
	}
	var dup, conflict *planItem
	txConflict := false
	for i, code := range codes {
		if i >= len(p.about) {
			break
		}
		switch code {
		case "ConditionalCheckFailed":
			if p.about[i].kind == kindIdem {
				dup = &p.about[i]
			} else if conflict == nil {
				conflict = &p.about[i]
			}
		case "TransactionConflict":
			txConflict = true
		case "", "None":
		default:
			return err, false
		}
	}
	switch {
	case dup != nil:
		return fmt.Errorf("%s: %w", dup.what, eventstore.ErrDuplicate), false
	case conflict != nil:
		return fmt.Errorf("%s: %w", conflict.what, eventstore.ErrConflict), false
	case txConflict:
		return fmt.Errorf("concurrent transaction: %w", eventstore.ErrConflict), true
	}
	return err, false
}

// putItem is the item that writes row r (validated: ValidateLists): its
// size and list keys checked against DynamoDB's limits. what names it in
// errors.
func putItem(tenant string, r *eventstore.Record, what string) (map[string]types.AttributeValue, error) {
	if len(r.Data) > eventstore.MaxItemBytes {
		return nil, fmt.Errorf("%s: data of %d bytes: %w", what, len(r.Data), eventstore.ErrTooLarge)
	}
	item := encodeRecord(tenant, r)
	for _, e := range r.Lists {
		if len(getS(item, ListAttrPK(e.List.Slot))) > maxPKBytes || len(getS(item, ListAttrSK(e.List.Slot))) > maxSKBytes {
			return nil, fmt.Errorf("%s: list %s: key longer than DynamoDB allows: %w", what, e.List.Name, eventstore.ErrInvalid)
		}
	}
	return item, nil
}

// addHead adds the head item of a: the stream's new version, conditioned on
// the expected one (absent for a new stream).
func (s *Store) addHead(a *eventstore.StreamAppend, pk string, add func(itemKind, string, types.TransactWriteItem, map[string]types.AttributeValue, map[string]types.AttributeValue) error) error {
	head := itemKey(pk, skHead)
	head[attrVersion] = num(a.ExpectedVersion + int64(len(a.Events)))
	put := &types.Put{TableName: &s.table, Item: head}
	if a.ExpectedVersion == 0 {
		put.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		put.ConditionExpression = aws.String("#v = :expected")
		put.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":expected": num(a.ExpectedVersion)}
	}
	what := fmt.Sprintf("stream %s expected at version %d", a.StreamID, a.ExpectedVersion)
	return add(kindHead, what, types.TransactWriteItem{Put: put}, head, head)
}

// appendEvents adds the event items of a: each at its version, written
// once (attribute_not_exists), so that two appends at one version conflict
// whatever else the commit holds.
func (s *Store) appendEvents(a *eventstore.StreamAppend, pk string, add func(itemKind, string, types.TransactWriteItem, map[string]types.AttributeValue, map[string]types.AttributeValue) error) error {
	for j := range a.Events {
		v := a.ExpectedVersion + int64(j) + 1
		item := encodeEvent(pk, v, &a.Events[j])
		put := &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}
		if err := add(kindEvent, fmt.Sprintf("stream %s event %d", a.StreamID, v), types.TransactWriteItem{Put: put}, item, item); err != nil {
			return err
		}
	}
	return nil
}

// keepSource makes put, a row derived from src outside the stream's
// appends (eventstore.Record.Source), keep src's version on the row, written
// only while the row holds no later version (none: a row without one, or no
// row). A newer row fails the commit (ErrConflict).
func keepSource(put *types.Put, src *eventstore.StreamVersion, what string) string {
	put.Item[attrStreamVersion] = num(src.Version)
	put.ConditionExpression = aws.String("attribute_not_exists(#sv) OR #sv <= :source")
	put.ExpressionAttributeNames = map[string]string{"#sv": attrStreamVersion}
	put.ExpressionAttributeValues = map[string]types.AttributeValue{":source": num(src.Version)}
	return fmt.Sprintf("%s derived from stream %s at version %d", what, src.StreamID, src.Version)
}

// keepVersion makes put, the row named as a's HeadRecord, the keeper of the
// stream's version: it writes the new version (attrStreamVersion) and is
// conditioned on the expected one: a new stream's row must not exist; a
// later append's row must exist and hold the expected version, or none (a
// row written without an append and without a Source, or before versions were kept
// on rows: then the events' own conditions alone serialize the appends). It
// returns what names the row in a conflict.
func keepVersion(put *types.Put, a *eventstore.StreamAppend) string {
	put.Item[attrStreamVersion] = num(a.ExpectedVersion + int64(len(a.Events)))
	what := fmt.Sprintf("stream %s expected at version %d (kept on its row %s/%s)", a.StreamID, a.ExpectedVersion, a.HeadRecord.Collection, a.HeadRecord.Key)
	if a.ExpectedVersion == 0 {
		put.ConditionExpression = aws.String("attribute_not_exists(pk)")
		put.ExpressionAttributeNames, put.ExpressionAttributeValues = nil, nil
		return what
	}
	if put.ConditionExpression != nil { // IfAbsent: the row must not exist at all
		return what
	}
	put.ConditionExpression = aws.String("attribute_exists(pk) AND (attribute_not_exists(#sv) OR #sv = :expected)")
	put.ExpressionAttributeNames = map[string]string{"#sv": attrStreamVersion}
	put.ExpressionAttributeValues = map[string]types.AttributeValue{":expected": num(a.ExpectedVersion)}
	return what
}
