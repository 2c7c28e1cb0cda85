# localstack/env.sh: environment for talking to a local LocalStack.
# Source it (POSIX sh/bash/zsh):  . localstack/env.sh
# The Makefile targets localstack-deploy, localstack-destroy, smoke-localstack
# and smoke.sh source it themselves. Every value can be overridden by setting
# it first, except the credentials: LocalStack maps the access key to the
# account id, and "test" (account 000000000000) keeps real AWS keys out of
# the way.

# Where LocalStack listens (the "edge" port).
export LOCALSTACK_ENDPOINT="${LOCALSTACK_ENDPOINT:-http://localhost:4566}"

# Standard AWS SDK/CLI endpoint overrides. cdklocal requires the S3 one to be
# set whenever AWS_ENDPOINT_URL is, and needs a host with resolvable
# subdomains for S3 (*.localhost.localstack.cloud resolves to 127.0.0.1).
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://localhost.localstack.cloud:4566}"
export AWS_ENDPOINT_URL_S3="${AWS_ENDPOINT_URL_S3:-http://s3.localhost.localstack.cloud:4566}"

# Dummy credentials and the region; never real keys.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_CREDENTIAL_EXPIRATION
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
# cdklocal (>= 3) strips AWS_* variables it is not told to keep.
export AWS_ENVAR_ALLOWLIST="AWS_REGION,AWS_DEFAULT_REGION"

# The stack name (infra/main.go StackID).
export SWITCHBOARD_STACK="${SWITCHBOARD_STACK:-Switchboard}"

# Operator key of the LocalStack deployment (a dev-only value). The stack
# receives only its SHA-256 (context operatorKeySha256); smoke.sh sends the key.
export SWITCHBOARD_LOCALSTACK_OPERATOR_KEY="${SWITCHBOARD_LOCALSTACK_OPERATOR_KEY:-sb-localstack-operator-key}"
if command -v sha256sum >/dev/null 2>&1; then
	SWITCHBOARD_LOCALSTACK_OPERATOR_KEY_SHA256=$(printf %s "$SWITCHBOARD_LOCALSTACK_OPERATOR_KEY" | sha256sum | cut -d' ' -f1)
else # macOS
	SWITCHBOARD_LOCALSTACK_OPERATOR_KEY_SHA256=$(printf %s "$SWITCHBOARD_LOCALSTACK_OPERATOR_KEY" | shasum -a 256 | cut -d' ' -f1)
fi
export SWITCHBOARD_LOCALSTACK_OPERATOR_KEY_SHA256
