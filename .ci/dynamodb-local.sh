#!/usr/bin/env bash
# DynamoDB Local for the test suite of the DynamoDB adapter.
#
#   .ci/dynamodb-local.sh start     install on demand, start (or reuse) an in-memory
#                                   instance on 127.0.0.1, print its endpoint on stdout
#   .ci/dynamodb-local.sh stop      stop it (never fails when nothing runs)
#   .ci/dynamodb-local.sh endpoint  print the running instance's endpoint, or exit 1
#
# DynamoDB Local is taken from the npm package amplify-dynamodb-simulator (it ships
# DynamoDBLocal.jar and its native libraries) and installed into .tools/dynamodb-local/.
# Java comes from Debian (a headless JRE) when `java` is missing.
#
# Environment: DYNAMODB_LOCAL_PORT fixes the port (default: a free port).
# Progress goes to stderr; stdout carries only the endpoint.
set -euo pipefail

readonly NPM_PACKAGE="amplify-dynamodb-simulator@2.9.30"
readonly START_TIMEOUT_SECONDS=60

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly TOOLS="$ROOT/.tools"
readonly INSTALL_DIR="$TOOLS/dynamodb-local"
readonly JAR="$INSTALL_DIR/DynamoDBLocal.jar"
readonly LIB_DIR="$INSTALL_DIR/DynamoDBLocal_lib"
readonly STAMP="$INSTALL_DIR/.installed"
readonly LOG_FILE="$TOOLS/dynamodb-local.log"
readonly PID_FILE="$TOOLS/dynamodb-local.pid"
readonly ENDPOINT_FILE="$TOOLS/dynamodb-local.endpoint"
readonly LOCK_FILE="$TOOLS/dynamodb-local.lock"

say() { echo "dynamodb-local: $*" >&2; }
die() { say "error: $*"; exit 1; }

# lock serialises start/stop of concurrent callers (when flock exists).
lock() {
	mkdir -p "$TOOLS"
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$LOCK_FILE"
		flock -w 120 9 || die "could not take $LOCK_FILE within 120 s"
	fi
}

install_jar() {
	if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$NPM_PACKAGE" && -f "$JAR" && -d "$LIB_DIR" ]]; then
		return 0
	fi
	command -v npm >/dev/null 2>&1 || die "npm is needed to fetch $NPM_PACKAGE (install nodejs/npm)"
	command -v tar >/dev/null 2>&1 || die "tar is needed to unpack $NPM_PACKAGE"
	say "installing DynamoDB Local from npm package $NPM_PACKAGE into ${INSTALL_DIR#"$ROOT"/}"
	local tmp
	tmp="$(mktemp -d "$TOOLS/.dynamodb-local-install.XXXXXX")"
	(cd "$tmp" && npm pack --silent "$NPM_PACKAGE" >&2) || { rm -rf "$tmp"; die "npm pack $NPM_PACKAGE failed"; }
	local tgz
	tgz="$(find "$tmp" -maxdepth 1 -name '*.tgz' -print -quit)"
	[[ -n "$tgz" ]] || { rm -rf "$tmp"; die "npm pack $NPM_PACKAGE produced no tarball"; }
	tar -xzf "$tgz" -C "$tmp" package/emulator/DynamoDBLocal.jar package/emulator/DynamoDBLocal_lib || {
		rm -rf "$tmp"
		die "$NPM_PACKAGE does not contain package/emulator/DynamoDBLocal.jar and DynamoDBLocal_lib/"
	}
	mkdir -p "$tmp/out"
	mv "$tmp/package/emulator/DynamoDBLocal.jar" "$tmp/package/emulator/DynamoDBLocal_lib" "$tmp/out/"
	echo "$NPM_PACKAGE" >"$tmp/out/.installed"
	rm -rf "$INSTALL_DIR"
	mv "$tmp/out" "$INSTALL_DIR"
	rm -rf "$tmp"
	say "installed $(du -sh "$INSTALL_DIR" | cut -f1) into ${INSTALL_DIR#"$ROOT"/}"
}

ensure_java() {
	command -v java >/dev/null 2>&1 && return 0
	say "java is missing: installing a headless JRE with apt-get (default-jre-headless)"
	command -v apt-get >/dev/null 2>&1 || die "java is missing and apt-get is unavailable: install a Java 11+ runtime"
	local sudo=""
	if [[ "$(id -u)" != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "java is missing and installing it needs root (no sudo): install a Java 11+ runtime"
		sudo="sudo"
	fi
	$sudo apt-get update >&2 || die "apt-get update failed: install a Java 11+ runtime"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends default-jre-headless >&2 ||
		die "apt-get install default-jre-headless failed: install a Java 11+ runtime"
	command -v java >/dev/null 2>&1 || die "java still missing after installing default-jre-headless"
	say "installed $(java -version 2>&1 | head -n1)"
}

# alive PID: the process exists and is our DynamoDB Local.
alive() {
	local pid="$1"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	if [[ -r "/proc/$pid/cmdline" ]]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'DynamoDBLocal.jar' || return 1
	fi
	return 0
}

# answers ENDPOINT: DynamoDB Local replies over HTTP (any status counts).
answers() {
	local code
	code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST \
		-H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
		-d '{}' "$1" 2>/dev/null)" || true
	[[ -n "$code" && "$code" != "000" ]]
}

# running prints the endpoint of a live, answering instance, or fails.
running() {
	[[ -f "$PID_FILE" && -f "$ENDPOINT_FILE" ]] || return 1
	local pid ep
	pid="$(cat "$PID_FILE")"
	ep="$(cat "$ENDPOINT_FILE")"
	alive "$pid" && answers "$ep" || return 1
	echo "$ep"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if port_free "$p"; then
			echo "$p"
			return 0
		fi
	done
	die "found no free TCP port on 127.0.0.1"
}

stop_instance() {
	if [[ -f "$PID_FILE" ]]; then
		local pid
		pid="$(cat "$PID_FILE")"
		if alive "$pid"; then
			say "stopping pid $pid"
			kill "$pid" 2>/dev/null || true
			local deadline=$((SECONDS + 10))
			while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
			if kill -0 "$pid" 2>/dev/null; then
				say "pid $pid did not exit: killing it"
				kill -9 "$pid" 2>/dev/null || true
			fi
		fi
	fi
	rm -f "$PID_FILE" "$ENDPOINT_FILE"
}

# bind_failed: the server could not listen (it keeps running when that happens).
bind_failed() { grep -qiE 'BindException|address already in use' "$LOG_FILE" 2>/dev/null; }

# launch PORT: start java, wait until it answers. Returns 2 when the port is taken.
launch() {
	local port="$1" ep="http://127.0.0.1:$1"
	if ! port_free "$port"; then
		say "port $port is in use"
		return 2
	fi
	say "starting on $ep (log: ${LOG_FILE#"$ROOT"/})"
	: >"$LOG_FILE" # no stale lines for bind_failed
	# fd 9 (the lock) is closed so that the server does not hold it.
	(exec 9>&-; cd "$INSTALL_DIR" && exec nohup java -Djava.library.path="$LIB_DIR" -jar "$JAR" -inMemory -port "$port" \
		>"$LOG_FILE" 2>&1 </dev/null) &
	local pid=$!
	echo "$pid" >"$PID_FILE"
	echo "$ep" >"$ENDPOINT_FILE"
	local deadline=$((SECONDS + START_TIMEOUT_SECONDS))
	while ((SECONDS < deadline)); do
		if bind_failed; then
			say "port $port was taken meanwhile"
			stop_instance
			return 2
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$PID_FILE" "$ENDPOINT_FILE"
			say "java exited before answering; log tail:"
			tail -n 40 "$LOG_FILE" >&2 || true
			return 1
		fi
		if answers "$ep"; then
			say "ready on $ep (pid $pid)"
			echo "$ep"
			return 0
		fi
		sleep 0.25
	done
	say "no answer on $ep within ${START_TIMEOUT_SECONDS} s; log tail:"
	tail -n 40 "$LOG_FILE" >&2 || true
	stop_instance
	return 1
}

cmd_start() {
	lock
	local ep
	if ep="$(running)"; then
		say "reusing the running instance on $ep (pid $(cat "$PID_FILE"))"
		echo "$ep"
		return 0
	fi
	stop_instance # clear stale files (or a live instance that no longer answers)
	command -v curl >/dev/null 2>&1 || die "curl is needed to probe DynamoDB Local"
	install_jar
	ensure_java
	local attempt rc
	if [[ -n "${DYNAMODB_LOCAL_PORT:-}" ]]; then
		[[ "$DYNAMODB_LOCAL_PORT" =~ ^[0-9]+$ ]] || die "DYNAMODB_LOCAL_PORT must be a port number"
		launch "$DYNAMODB_LOCAL_PORT" && return 0
		exit 1
	fi
	for attempt in 1 2 3; do
		rc=0
		launch "$(pick_port)" || rc=$?
		[[ $rc == 0 ]] && return 0
		[[ $rc == 2 ]] || exit 1
		say "port taken (attempt $attempt): trying another"
	done
	die "could not bind a free port in 3 attempts"
}

cmd_stop() {
	lock
	stop_instance
}

cmd_endpoint() {
	running || {
		say "not running (start it with .ci/dynamodb-local.sh start)"
		exit 1
	}
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
endpoint) cmd_endpoint ;;
*)
	echo "usage: $0 start|stop|endpoint" >&2
	exit 2
	;;
esac
