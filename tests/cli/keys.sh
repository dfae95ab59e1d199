#!/usr/bin/env bash
# keys.sh — `quarrel keys`: create prints a key once (and only on stdout), list never
# shows a secret, the file holds no secret and has mode 0600, rotate/revoke change the
# state list reports, concurrent creates lose nothing (flock), loose permissions and
# bad syntax are refused with one line on stderr, usage errors exit 2.
set -u
bin=${QUARREL_BIN:?QUARREL_BIN must point at the quarrel binary}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/quarrel-keys.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export QUARREL_KEYS_FILE="$tmp/conf/keys.json"

k1=$("$bin" keys create --name ci --rpm 60 --admin 2>"$tmp/err") || fail "create: $(cat "$tmp/err")"
[[ $k1 =~ ^qk-[0-9a-f]{8}-[A-Za-z0-9_-]{43}$ ]] || fail "key shape: '$k1'"
grep -q "shown only now" "$tmp/err" || fail "create: no notice on stderr"
[ "$(stat -c %a "$QUARREL_KEYS_FILE")" = 600 ] || fail "mode $(stat -c %a "$QUARREL_KEYS_FILE")"
[ "$(stat -c %a "$tmp/conf")" = 700 ] || fail "dir mode $(stat -c %a "$tmp/conf")"
secret=${k1:12}
grep -qF -- "$secret" "$QUARREL_KEYS_FILE" && fail "secret stored in the file"

"$bin" keys create --name ci >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$tmp/err")" = 1 ] || fail "duplicate name: rc $rc, $(cat "$tmp/err")"

list=$("$bin" keys list) || fail "list"
grep -qF -- "$secret" <<<"$list" && fail "list shows the secret"
grep -q "^ci .*qk-${k1:3:8} .* 60 .*yes .*active" <<<"$list" || fail "list row: $list"

k2=$("$bin" keys rotate ci --grace 1h 2>/dev/null) || fail "rotate"
[ "$k2" != "$k1" ] || fail "rotate kept the secret"
"$bin" keys list --json | python3 -c '
import json, sys
k = {e["name"]: e for e in json.load(sys.stdin)}
assert k["ci"]["state"] == "rotating", k
assert k["ci"]["previous_until"] and k["ci"]["admin"] and k["ci"]["rpm"] == 60, k
' || fail "list --json after rotate"

"$bin" keys create --name web --tpm 1000 --expires 2099-01-01 >/dev/null 2>&1 || fail "create web"
"$bin" keys revoke web 2>/dev/null || fail "revoke"
"$bin" keys list | grep -q "^web .*revoked" || fail "revoked state"
"$bin" keys revoke nobody 2>/dev/null && fail "revoke of an unknown key succeeded"

# concurrent creates: the lock makes every one land
for i in $(seq 1 8); do "$bin" keys create --name "p$i" >/dev/null 2>&1 & done
wait
n=$("$bin" keys list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 10 ] || fail "after 8 concurrent creates: $n keys, want 10"

chmod 644 "$QUARREL_KEYS_FILE"
"$bin" keys list >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "chmod 600" "$tmp/err" || fail "loose mode: rc $rc, $(cat "$tmp/err")"
chmod 600 "$QUARREL_KEYS_FILE"
echo '{"format":"quarrel-keys","version":1,"keys":[{"name":1}]}' >"$tmp/bad.json"; chmod 600 "$tmp/bad.json"
"$bin" keys list --keys-file "$tmp/bad.json" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$tmp/err")" = 1 ] || fail "bad file: rc $rc, $(cat "$tmp/err")"

for args in "" "frobnicate" "create" "create --rpm -3 --name x" "rotate ci --grace soon" "create --name y --expires someday"; do
    # shellcheck disable=SC2086
    "$bin" keys $args >/dev/null 2>&1; rc=$?
    [ $rc = 2 ] || fail "usage error '$args': rc $rc"
done

[ $fails = 0 ] && echo "keys: all checks passed"
exit $((fails > 0))
