#!/usr/bin/env bash
# localstack/smoke.sh: a quick curl-only check of the LocalStack deployment
# (the full smoke test is `make smoke-localstack`, tools/smoke) through
# the REST API (v1): healthz, onboard-tenant (operator key), its idempotent
# replay, and get-tenant with the API key onboarding returned.
# Prereqs: LocalStack running, `make localstack-deploy` done, curl, and
# awslocal or the AWS CLI (falls back to dist/localstack-outputs.json).
# SMOKE_BASE_URL=<url> skips the stack lookup and tests that base URL instead
# (e.g. local mode: SMOKE_BASE_URL=http://127.0.0.1:8080 with
# SWITCHBOARD_OPERATOR_KEY=$SWITCHBOARD_LOCALSTACK_OPERATOR_KEY make run).
# Exit status 0 means every step passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=env.sh
. "$here/env.sh"

timeout_s=${SMOKE_TIMEOUT:-180} # the first invocation pulls the Lambda runtime image
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
step() { echo "smoke: $*"; }

# json_str FIELD < body: value of a top-level string field (flat JSON only).
json_str() { sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' | head -n1; }

stack_output() {
	local key=$1 value=""
	if command -v awslocal >/dev/null 2>&1; then
		value=$(awslocal cloudformation describe-stacks --stack-name "$SWITCHBOARD_STACK" \
			--query "Stacks[0].Outputs[?OutputKey=='$key'].OutputValue" --output text)
	elif command -v aws >/dev/null 2>&1; then
		value=$(aws --endpoint-url "$AWS_ENDPOINT_URL" cloudformation describe-stacks --stack-name "$SWITCHBOARD_STACK" \
			--query "Stacks[0].Outputs[?OutputKey=='$key'].OutputValue" --output text)
	elif [ -f dist/localstack-outputs.json ]; then
		value=$(tr -d '\n' < dist/localstack-outputs.json | json_str "$key")
	else
		fail "need awslocal, aws, or dist/localstack-outputs.json to read the stack outputs"
	fi
	[ -n "$value" ] && [ "$value" != "None" ] || fail "stack $SWITCHBOARD_STACK has no output $key (deployed? make localstack-deploy)"
	printf '%s' "$value"
}

# call METHOD PATH [BODY] [extra curl args...]: sets $status; body in $tmp/body, headers in $tmp/headers.
call() {
	local method=$1 path=$2 body=${3:-}
	shift 3 || shift $#
	status=$(curl -sS -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -X "$method" \
		-H 'Content-Type: application/json' ${body:+--data "$body"} "$@" "$base$path") || status=000
}

if [ -n "${SMOKE_BASE_URL:-}" ]; then
	# Any other deployment: local mode (http://127.0.0.1:8080), an AWS API URL...
	base=${SMOKE_BASE_URL%/}
else
	api_id=$(stack_output RestApiId)
	base="$LOCALSTACK_ENDPOINT/restapis/$api_id/prod/_user_request_"
fi
step "API $base"

step "GET /healthz (waiting up to ${timeout_s}s for the function)"
deadline=$((SECONDS + timeout_s))
while :; do
	call GET /healthz
	[ "$status" = 200 ] && break
	[ $SECONDS -lt $deadline ] || fail "GET /healthz: status $status: $(head -c 500 "$tmp/body" 2>/dev/null)"
	sleep 2
done
grep -q '"status"[[:space:]]*:[[:space:]]*"ok"' "$tmp/body" || fail "GET /healthz body: $(cat "$tmp/body")"

idem="smoke-$(date +%s)-$RANDOM"
name="smoke-$idem"
onboard() {
	call POST /commands/onboard-tenant "{\"name\":\"$name\",\"tier\":\"pooled\"}" \
		-H "Authorization: Bearer $SWITCHBOARD_LOCALSTACK_OPERATOR_KEY" -H "Idempotency-Key: $idem"
}

step "POST /commands/onboard-tenant"
onboard
[ "$status" = 200 ] || fail "onboard-tenant: status $status: $(cat "$tmp/body")"
first=$(cat "$tmp/body")
tenant=$(json_str tenantId < "$tmp/body")
api_key=$(json_str apiKey < "$tmp/body")
[[ $tenant == tnt_* ]] || fail "onboard-tenant: no tenantId in $first"
[[ $api_key == sbk_* ]] || fail "onboard-tenant: no apiKey in $first"

step "POST /commands/onboard-tenant again (same Idempotency-Key: replay)"
onboard
[ "$status" = 200 ] || fail "replay: status $status: $(cat "$tmp/body")"
grep -qi '^idempotent-replayed:[[:space:]]*true' "$tmp/headers" || fail "replay: no Idempotent-Replayed: true header"
[ "$(json_str tenantId < "$tmp/body")" = "$tenant" ] || fail "replay: different tenant: $(cat "$tmp/body")"

step "POST /queries/get-tenant (API key)"
call POST /queries/get-tenant '{}' -H "Authorization: Bearer $api_key"
[ "$status" = 200 ] || fail "get-tenant: status $status: $(cat "$tmp/body")"
[ "$(json_str tenantId < "$tmp/body")" = "$tenant" ] || fail "get-tenant: $(cat "$tmp/body")"

step "OK: tenant $tenant"
