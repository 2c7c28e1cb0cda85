#!/usr/bin/env bash
# Reads `go test -bench` output on stdin and prints it as a table (µs/op, B/op,
# allocs/op), with package headers. Non-benchmark lines (ok, PASS) are dropped.
awk '
/^pkg: / { pkg = $2; sub(/.*switchboard\//, "", pkg); next }
/^Benchmark/ {
  if (!header) { printf "%-58s %12s %12s %10s\n", "benchmark", "µs/op", "B/op", "allocs/op"; header = 1 }
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  ns = ""; b = ""; a = ""
  for (i = 3; i <= NF; i++) {
    if ($(i) == "ns/op") ns = $(i-1)
    if ($(i) == "B/op") b = $(i-1)
    if ($(i) == "allocs/op") a = $(i-1)
  }
  printf "%-58s %12.1f %12s %10s\n", pkg "/" name, ns / 1000, b, a
  next
}
/^(FAIL|panic:|--- FAIL)/ { print; failed = 1 }
END { exit failed }
'
