package dynamostore

import "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

// ItemSize is an item's size by AWS's published rules: the sum of its
// attribute names' lengths and its values' sizes (see ValueSize). Given an
// item as this package encodes it, it is the size written: a compressed
// value counts its compressed bytes under its own name (dataz, payloadz).
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + ValueSize(v)
	}
	return n
}

// ValueSize is the size of one attribute value by AWS's rules: strings their
// UTF-8 bytes, binaries their bytes, numbers about one byte per two
// significant digits plus one, BOOL and NULL one byte, lists and maps 3
// bytes plus their elements plus one byte per element (map elements count
// their names), sets the sum of their elements.
func ValueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + ValueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for name, e := range v.Value {
			n += 1 + len(name) + ValueSize(e)
		}
		return n
	}
	return 0
}

// numberSize: (significant digits + 1) / 2 + 1 bytes; leading zeros, the
// sign, the decimal point and an exponent are not digits.
func numberSize(s string) int {
	digits, leading := 0, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 'e' || c == 'E' {
			break
		}
		if c < '0' || c > '9' {
			continue
		}
		if leading && c == '0' {
			continue
		}
		leading = false
		digits++
	}
	if digits == 0 {
		digits = 1
	}
	return (digits+1)/2 + 1
}
