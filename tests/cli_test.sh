#!/usr/bin/env bash
# The sandproc CLI against a real sandprocd: verbs, --json, exit codes.
# usage: cli_test.sh SANDPROCD SANDPROC TESTCHILD
set -u
daemon=$1 cli=$2 testchild=$3
dir=$(mktemp -d "${TMPDIR:-/tmp}/sandproc-cli-XXXXXX")
passed=0 failed=0

cleanup() {
	[ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

"$daemon" --listen "ipc://$dir/req.sock" --events "ipc://$dir/ev.sock" --data "$dir/data" --on-exit stop \
	>"$dir/ready" 2>"$dir/daemon.log" &
dpid=$!
for _ in $(seq 200); do grep -q ready "$dir/ready" 2>/dev/null && break; sleep 0.05; done
# The admin key is found the way the quick start finds it: admin.key in the data dir.
export SANDPROC_URL="ipc://$dir/req.sock" SANDPROC_EVENTS_URL="ipc://$dir/ev.sock" SANDPROC_DATA="$dir/data"

# check NAME EXPECTED_EXIT COMMAND...: runs it, keeps stdout in $out and stderr in $err.
check() {
	local name=$1 want=$2
	shift 2
	"$@" >"$dir/out" 2>"$dir/err"
	local got=$?
	out=$(cat "$dir/out") err=$(cat "$dir/err")
	if [ "$got" = "$want" ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAIL $name: exit $got, wanted $want; stdout: $out; stderr: $err"
	fi
}

# expect NAME CONDITION (a shell test on $out/$err)
expect() {
	if eval "$2"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAIL $1: $2; stdout: $out; stderr: $err"
	fi
}

is_json() { python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin if l.strip()]' <<<"$1"; }

check health 0 "$cli" health
expect health-text '[[ $out == ok:* ]]'
check health-json 0 "$cli" --json health
expect health-json-valid 'is_json "$out" && [[ $out == *\"version\":\"0.1.0\"* ]]'

check run-ok 0 "$cli" run -- echo hello
expect run-stdout '[ "$out" = hello ]'
check run-code 3 "$cli" run -- sh -c 'echo to-err >&2; exit 3'
expect run-stderr '[ "$err" = to-err ]'
check run-not-found 127 "$cli" run -- no-such-command-anywhere
expect run-not-found-msg '[[ $err == "sandproc: NOT_FOUND: "* ]]'
printf '#!/bin/sh\n' >"$dir/noexec" && chmod 644 "$dir/noexec"
check run-not-executable 126 "$cli" run -- "$dir/noexec"
check run-timeout 124 "$cli" run --timeout 200 -- sleep 10
check run-killed 137 "$cli" run -- sh -c 'kill -9 $$'
check run-cwd-env 0 "$cli" run --cwd "$dir" -e GREETING=hi -- sh -c 'echo "$GREETING $(pwd)"'
expect run-cwd-env-out '[ "$out" = "hi $dir" ]'
check run-stdin 0 bash -c "printf 'abc' | '$cli' run -i -- cat"
expect run-stdin-out '[ "$out" = abc ]'
check run-json 0 "$cli" --json run -- printf 'x\n'
expect run-json-valid 'is_json "$out" && [[ $out == *"\"stdout\":\"x\\n\""* ]]'
check run-usage 2 "$cli" run --bogus -- true

check exec-bash 4 "$cli" exec bash 'echo from-bash; exit 4'
expect exec-bash-out '[ "$out" = from-bash ]'
check exec-python 0 "$cli" exec python 'print(6*7)'
expect exec-python-out '[ "$out" = 42 ]'

check start 0 "$cli" start --name sleeper --label team=a -- sleep 30
id=$out
expect start-id '[[ $id =~ ^proc_[0-9a-f]{24}$ ]]'
check ps 0 "$cli" ps --state running
expect ps-lists '[[ $out == *"$id"*sleeper* ]]'
check ps-json 0 "$cli" --json ps
expect ps-json-valid 'is_json "$out" && [[ $out == *"\"labels\":[\"team=a\"]"* ]]'
check get 0 "$cli" get "$id"
expect get-state '[[ $out == *"state       running"* ]]'
check stop 0 "$cli" stop "$id" --wait 5000
expect stop-out '[ "$out" = "$id killed" ]'
check wait-killed 143 "$cli" wait "$id"
check rm 0 "$cli" rm "$id"
check get-gone 1 "$cli" get "$id"
expect get-gone-msg '[[ $err == "sandproc: NOT_FOUND: "* ]]'

check start-exit 0 "$cli" start -- sh -c 'echo one; echo two >&2; exit 5'
id=$out
check wait-code 5 "$cli" wait "$id"
check logs 0 "$cli" logs "$id"
expect logs-out '[ "$out" = "one
two" ]'
check logs-stderr 0 "$cli" logs "$id" --stream stderr
expect logs-stderr-out '[ "$out" = two ]'
check logs-tail 0 "$cli" logs "$id" --tail 1
expect logs-tail-out '[ "$out" = two ]'
# --tail counts lines, not write chunks (a partial last line written in two pieces counts as one).
check lines-start 0 "$cli" start -- sh -c "printf 'a\nb\nc\nd\n'; sleep 0.2; printf par; sleep 0.2; printf tial"
lid=$out
check lines-wait 0 "$cli" wait "$lid"
check lines-tail-1 0 "$cli" logs "$lid" --tail 1
expect lines-tail-1-out '[ "$out" = partial ]'
check lines-tail-3 0 "$cli" logs "$lid" --tail 3
expect lines-tail-3-out '[ "$out" = "$(printf "c\nd\npartial")" ]'
check lines-tail-many 0 "$cli" logs "$lid" --tail 100
expect lines-tail-many-out '[ "$out" = "$(printf "a\nb\nc\nd\npartial")" ]'
check lines-tail-entries 0 "$cli" logs "$lid" --tail-entries 1
expect lines-tail-entries-out '[ "$out" = tial ]'
check lines-follow-tail 0 "$cli" logs "$lid" --follow --tail 2
expect lines-follow-tail-out '[ "$out" = "$(printf "d\npartial")" ]'
check logs-json 0 "$cli" --json logs "$id"
expect logs-json-valid 'is_json "$out" && [[ $out == *\"stream\":\"stderr\"* ]]'
check rm-running-refused 1 "$cli" rm "$("$cli" start -- sleep 30)"
expect rm-running-msg '[[ $err == "sandproc: FAILED_PRECONDITION: "* ]]'

check follow-start 0 "$cli" start -- "$testchild" chunks 20 10 20
id=$out
check follow 0 "$cli" logs "$id" --follow
expect follow-all '[ "${#out}" = 200 ]'

check input-start 0 "$cli" start -- "$testchild" echo
id=$out
check input 0 "$cli" input "$id" 'typed text'
check input-eof 0 "$cli" input "$id" --eof
check input-wait 0 "$cli" wait "$id"
check input-logs 0 "$cli" logs "$id"
expect input-echoed '[ "$out" = "typed text" ]'
check input-ended 1 "$cli" input "$id" more

# Typing a line, C escapes, and --json saying how many bytes went in.
check line-start 0 "$cli" start -- "$testchild" echo
id=$out
check input-line 0 "$cli" input "$id" --line 'first line'
check input-escapes-json 0 "$cli" --json input "$id" -e 'tab\there\x21\n'
expect input-escapes-json-out 'is_json "$out" && [[ $out == *\"bytes_written\":10* ]]'
check input-bad-escape 2 "$cli" input "$id" -e 'oops\q'
check line-eof 0 "$cli" input "$id" --eof
check line-wait 0 "$cli" wait "$id"
check line-logs 0 "$cli" logs "$id"
typed=$(printf 'first line\ntab\there!')
expect line-echoed '[ "$out" = "$typed" ]'
# attach to a TTY process that has ended is an error, with a non-zero exit.
check tty-start 0 "$cli" start --tty -- sh
id=$out
check tty-exit 0 "$cli" input "$id" --line 'exit 0'
check tty-wait 0 "$cli" wait "$id"
check attach-ended 1 "$cli" attach "$id"
expect attach-ended-msg '[[ $err == "sandproc: FAILED_PRECONDITION: "*"has ended"* ]]'

# A name where an id is expected; names are unique among running processes.
check name-start 0 "$cli" start --name web --label tier=front -- sh -c 'echo serving; exec sleep 30'
wid=$out
check name-dup 1 "$cli" start --name web -- true
expect name-dup-msg '[[ $err == "sandproc: ALREADY_EXISTS: "*"\"web\""*"$wid"* ]]'
check name-get 0 "$cli" --json get web
expect name-get-id '[[ $out == *"\"id\":\"$wid\""* ]]'
check name-ps 0 "$cli" --json ps --name web --label tier=front
expect name-ps-one '[ "$(grep -c "\"name\":\"web\"" <<<"$out")" = 1 ]'
check name-ps-other-label 0 "$cli" --json ps --label tier=back
expect name-ps-other-none '[[ $out != *"$wid"* ]]'
for _ in $(seq 100); do "$cli" logs web | grep -q serving && break; sleep 0.05; done
check name-logs 0 "$cli" logs web
expect name-logs-out '[ "$out" = serving ]'
check name-stop 0 "$cli" stop web --wait 5000
check name-again 0 "$cli" start --name web -- true
check name-again-wait 0 "$cli" wait web
check name-missing 1 "$cli" get no-such-name
expect name-missing-msg '[[ $err == "sandproc: NOT_FOUND: "* ]]'

# run shows output in the order written when stdout and stderr go to one place, and as it comes.
check run-order 0 bash -c "'$cli' run -- sh -c 'echo 1; echo 2 >&2; echo 3' 2>&1"
expect run-order-out '[ "$out" = "$(printf "1\n2\n3")" ]'
check run-apart 0 "$cli" run -- sh -c 'echo 1; echo 2 >&2; echo 3'
expect run-apart-out '[ "$out" = "$(printf "1\n3")" ] && [ "$err" = 2 ]'
"$cli" run -- sh -c 'sleep 0.5; echo first; sleep 2; echo second' >"$dir/live.out" 2>&1 &
lp=$!
for _ in $(seq 75); do grep -q first "$dir/live.out" && break; sleep 0.02; done
out=$(cat "$dir/live.out") err=""
expect run-live '[ "$out" = first ]'
wait "$lp"
out=$(cat "$dir/live.out")
expect run-live-all '[ "$out" = "$(printf "first\nsecond")" ]'

# exec takes --cwd and -e like run.
check exec-cwd-env 0 "$cli" exec bash 'echo "$GREETING $(pwd)"' --cwd "$dir" -e GREETING=hey
expect exec-cwd-env-out '[ "$out" = "hey $dir" ]'

# --shell runs a command line; a command line given as one argument gets a hint.
check shell-run 3 "$cli" run --shell 'echo a && echo b >&2; exit 3'
expect shell-run-out '[ "$out" = a ] && [ "$err" = b ]'
check shell-start 0 "$cli" start --shell 'echo started-by-shell'
check shell-start-wait 0 "$cli" wait "$out"
check shell-hint 127 "$cli" run -- 'echo hi && ls'
expect shell-hint-msg '[[ $err == *"use --shell '\''echo hi && ls'\''"* ]]'
check shell-and-command 2 "$cli" run --shell 'true' -- true

check signal-start 0 "$cli" start -- "$testchild" usr1
id=$out
sleep 0.2
check signal 0 "$cli" signal "$id" USR1
check signal-bad 1 "$cli" signal "$id" NOSUCH
check kill 0 "$cli" kill "$id" --wait 5000
check wait-sigkill 137 "$cli" wait "$id"

check tty-start 0 "$cli" start --tty --cols 50 --rows 10 -- sh -c 'printf "\033[3;5Hhere"; sleep 30'
id=$out
sleep 0.3
check screen 0 "$cli" screen "$id"
expect screen-rows '[ "$(sed -n 3p "$dir/out")" = "    here" ] && [ "$(wc -l <"$dir/out")" = 10 ]'
check resize 0 "$cli" resize "$id" 60 12
check resize-bad 1 "$cli" resize "$id" 0 12
expect resize-bad-msg '[[ $err == "sandproc: INVALID_ARGUMENT: "* ]]'
check tty-kill 0 "$cli" kill "$id" --wait 5000

check config 0 "$cli" config
expect config-out '[[ $out == *"max_concurrent_processes    64"* ]]'
check config-set 0 "$cli" config set max_output_bytes=2048 default_run_timeout_ms=5000
expect config-set-out '[[ $out == *"max_output_bytes            2048"* ]]'
check config-set-invalid 1 "$cli" config set max_concurrent_processes=0
check config-set-unknown 2 "$cli" config set nope=1
check config-json 0 "$cli" --json config get
expect config-json-valid 'is_json "$out" && [[ $out == *\"default_run_timeout_ms\":5000* ]]'

long_name=$(printf 'n%.0s' $(seq 130))
check name-too-long 1 "$cli" start --name "$long_name" -- true
expect name-too-long-msg '[[ $err == "sandproc: INVALID_ARGUMENT: name is 130 bytes; the limit is 128" ]]'
check help-limits 0 "$cli" --help
expect help-limits-out '[[ $out == *"name 128 bytes"* ]]'

# Keys: made by the admin (admin.key, found through SANDPROC_DATA), the secret shown once.
check key-create 0 "$cli" key create --role viewer --tenant acme --name ci
expect key-create-out '[[ $out == *"role      viewer"* && $out == *"tenant    acme"* && $out == *"secret    spk_"* ]]'
viewer=$(sed -n 's/^secret *//p' <<<"$out")
viewer_id=$(sed -n 's/^id *//p' <<<"$out")
check key-ls 0 "$cli" --json key ls
expect key-ls-no-secret '[[ $out == *"$viewer_id"* && $out != *"$viewer"* ]]'
check key-viewer-reads 0 "$cli" --token "$viewer" health
check key-viewer-cannot-run 126 "$cli" --token "$viewer" run -- true
expect key-viewer-cannot-run-msg '[[ $err == "sandproc: PERMISSION_DENIED: sandproc.v1.Processes/Run needs a developer key; key $viewer_id is a viewer" ]]'
check key-env-token 1 env SANDPROC_TOKEN="$viewer" "$cli" config set max_concurrent_processes=5
check key-rm 0 "$cli" key rm "$viewer_id"
check key-revoked 1 "$cli" --token "$viewer" health
expect key-revoked-msg '[[ $err == *UNAUTHENTICATED*"unknown or revoked key"* ]]'
check key-no-role 2 "$cli" key create
check no-key 1 env SANDPROC_DATA=/nonexistent "$cli" health
expect no-key-msg '[[ $err == *UNAUTHENTICATED*"needs a key"* ]]'
# Following with no feed: Logs long polls alone.
check follow-no-feed 0 "$cli" --events none run -- sh -c 'echo one; sleep 0.2; echo two'
expect follow-no-feed-out '[[ $out == "one"$'"'"'\n'"'"'"two" ]]'
check logs-follow-no-feed-start 0 "$cli" start -- sh -c 'echo a; sleep 0.3; echo b'
fid=$out
check logs-follow-no-feed 0 "$cli" --events none logs --follow "$fid"
expect logs-follow-no-feed-out '[[ $out == "a"$'"'"'\n'"'"'"b" ]]'

check unknown-verb 2 "$cli" frobnicate
check no-server 1 "$cli" --server "ipc://$dir/nothing.sock" health
expect no-server-msg '[[ $err == "sandproc: UNAVAILABLE: "* ]]'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
