package capacity

import "math"

// writeUnitBytes is the item size one write unit covers.
const writeUnitBytes = 1024

// WriteUnits is the standard write units of an item of size bytes: one per
// started KB (at least one).
func WriteUnits(size int) float64 {
	return math.Max(1, math.Ceil(float64(size)/writeUnitBytes))
}
