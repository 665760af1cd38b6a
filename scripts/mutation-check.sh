#!/usr/bin/env bash
# Mutation check: breaks the agent on purpose, one way at a time, and expects the tests that
# guard that behaviour to fail.
#
#   scripts/mutation-check.sh            every mutation in test/mutations/
#   scripts/mutation-check.sh NAME...    only these (test/mutations/NAME.patch)
#   scripts/mutation-check.sh --list     the mutations and what each breaks
#
# Each test/mutations/NAME.patch starts with header lines (git apply skips text before the first
# "diff --git"):
#   # mutation: what the patch breaks, in words
#   # unit: test files of the unit project that must catch it (space separated)
#   # integration: test files of the integration project (one vitest run each; root, dockerd)
#   # remove: a tracked file to delete as (part of) the mutation, e.g. a golden file
# followed by an ordinary `git diff` (optional when the mutation is only a removal).
#
# Steps: refuse to start unless the work tree is clean (git status shows nothing); run every
# target file once without any mutation (the baseline: must pass, else the check proves
# nothing); then for each mutation apply it, run its target files (CI=true), expect at least one
# test to fail, and restore exactly the paths the mutation touched. Prints a table; exits 1 when
# the baseline fails, a patch no longer applies (the code moved: regenerate it) or a mutation is
# not caught, 2 on a usage error.
set -euo pipefail

ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
MUT_DIR=test/mutations

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
}

available() {
  local f
  for f in "$MUT_DIR"/*.patch; do
    [ -e "$f" ] || continue
    basename "$f" .patch
  done
}

# header NAME KEY -> the values of "# KEY:" lines, space separated
header() {
  sed -n "s/^# $2: *//p" "$MUT_DIR/$1.patch" | tr '\n' ' ' | sed 's/ *$//'
}

has_diff() {
  grep -q '^diff --git ' "$MUT_DIR/$1.patch"
}

names=()
case "${1:-}" in
  -h | --help)
    usage
    exit 0
    ;;
  --list)
    for n in $(available); do printf '%-28s %s\n' "$n" "$(header "$n" mutation)"; done
    exit 0
    ;;
esac
if [ $# -gt 0 ]; then
  for n in "$@"; do
    if [ ! -f "$MUT_DIR/$n.patch" ]; then
      echo "mutation-check: no mutation named '$n' ($MUT_DIR/$n.patch); known: $(available | tr '\n' ' ')" >&2
      exit 2
    fi
    names+=("$n")
  done
else
  mapfile -t names < <(available)
fi
if [ ${#names[@]} -eq 0 ]; then
  echo "mutation-check: no mutations in $MUT_DIR" >&2
  exit 2
fi
for n in "${names[@]}"; do
  if [ -z "$(header "$n" unit)$(header "$n" integration)" ]; then
    echo "mutation-check: $MUT_DIR/$n.patch names no test file (# unit: or # integration: line)" >&2
    exit 2
  fi
  if ! has_diff "$n" && [ -z "$(header "$n" remove)" ]; then
    echo "mutation-check: $MUT_DIR/$n.patch has neither a diff nor a '# remove:' line" >&2
    exit 2
  fi
done

if [ -n "$(git status --porcelain --untracked-files=all)" ]; then
  echo "mutation-check: the work tree has uncommitted changes; commit or stash them first (this script restores files with git checkout):" >&2
  git status --short >&2
  exit 1
fi

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/hm-mutation.XXXXXX")
export CI=true
unset UPDATE_GOLDEN HARBORMASTER_TEST_SKIP_BUILD
export NO_COLOR=1 FORCE_COLOR=0

# Paths the applied mutation touched (restored by restore()).
touched=()
ran_integration=0

restore() {
  local p
  for p in "${touched[@]}"; do
    if git ls-files --error-unmatch -- "$p" >/dev/null 2>&1; then
      git checkout -- "$p"
    else
      git clean -fq -- "$p" # added by the patch
    fi
  done
  touched=()
}

# shellcheck disable=SC2317 # called by the EXIT trap
on_exit() {
  local rc=$?
  restore
  if [ "$ran_integration" = 1 ]; then
    # the integration harness built dist/ from the mutated sources: rebuild it from the real ones
    npm run build --silent >/dev/null 2>&1 || echo "mutation-check: npm run build failed; dist/ may hold a mutated build" >&2
  fi
  if [ -n "$(git status --porcelain --untracked-files=all)" ]; then
    echo "mutation-check: the work tree is not clean after restoring; check git status" >&2
    rc=1
  fi
  if [ "$rc" = 0 ]; then rm -rf "$LOGS"; else echo "mutation-check: logs kept in $LOGS" >&2; fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# summarize JSON -> "failed total skipped fileErrors|first failing test|first file error"
summarize() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const fs = require("node:fs");
    let r;
    try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); }
    catch { console.log("0 0 0 1||no vitest report"); process.exit(0); }
    const files = r.testResults ?? [];
    const failedTests = files.flatMap((f) => f.assertionResults.filter((a) => a.status === "failed"));
    const fileErrors = files.filter((f) => f.status === "failed" && f.assertionResults.every((a) => a.status !== "failed"));
    const first = failedTests[0]?.fullName ?? "";
    const err = (fileErrors[0]?.message ?? "").split("\n")[0].slice(0, 120);
    console.log(`${r.numFailedTests} ${r.numTotalTests} ${(r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)} ${fileErrors.length}|${first}|${err}`);
  ' "$1"
}

# run_files TAG PROJECT FILE... -> vitest once; prints the summary line
run_files() {
  local tag=$1 project=$2
  shift 2
  [ "$project" = integration ] && ran_integration=1
  npx vitest run --project "$project" --reporter=default --reporter=json \
    --outputFile.json="$LOGS/$tag.json" "$@" >"$LOGS/$tag.log" 2>&1 || true
  summarize "$LOGS/$tag.json"
}

# run_runs TAG RUN... -> each RUN ("unit FILE..." or "integration FILE") is one vitest run;
# prints the sum: "failed total skipped fileErrors|first failing test|first file error"
run_runs() {
  local tag=$1
  shift
  local failed=0 total=0 skipped=0 errors=0 first='' err='' i=0 r sum a b c d rest
  for r in "$@"; do
    i=$((i + 1))
    # shellcheck disable=SC2086 # "project file..." split into words on purpose
    sum=$(run_files "$tag.$i" $r)
    read -r a b c d <<<"${sum%%|*}"
    failed=$((failed + a)) total=$((total + b)) skipped=$((skipped + c)) errors=$((errors + d))
    rest=${sum#*|}
    [ -z "$first" ] && first=${rest%%|*}
    [ -z "$err" ] && err=${rest#*|}
  done
  echo "$failed $total $skipped $errors|$first|$err"
}

# runs_of NAME... -> the vitest runs for these mutations' files, one per line: their unit files
# together (each once) and each integration file alone
runs_of() {
  local n f unit='' integ=''
  for n in "$@"; do
    for f in $(header "$n" unit); do
      case " $unit " in *" $f "*) ;; *) unit="$unit $f" ;; esac
    done
    for f in $(header "$n" integration); do
      case " $integ " in *" $f "*) ;; *) integ="$integ $f" ;; esac
    done
  done
  [ -n "$unit" ] && echo "unit${unit}"
  for f in $integ; do echo "integration $f"; done
  return 0
}

files_of() {
  echo "$(header "$1" unit) $(header "$1" integration)" | sed 's#test/##g; s/^ *//; s/ *$//'
}

start=$(date +%s)
status=0

# Baseline: every target file once, unmutated (the unit files in one run).
echo "mutation-check: baseline (no mutation): the target files must pass" >&2
baseline_rows=()
mapfile -t baseline_runs < <(runs_of "${names[@]}")
for r in "${baseline_runs[@]}"; do
  sum=$(run_runs "baseline.${r%% *}.${#baseline_rows[@]}" "$r")
  read -r failed total skipped errors <<<"${sum%%|*}"
  if [ "$failed" = 0 ] && [ "$errors" = 0 ] && [ "$skipped" = 0 ] && [ "$total" -gt 0 ]; then
    result="passed ($total tests)"
  else
    rest=${sum#*|}
    result="FAILED ($failed failed, $skipped skipped, $errors file errors, of $total: ${rest%%|*}${rest#*|})"
    status=1
  fi
  files=${r#* }
  files=${files//test\//}
  baseline_rows+=("$files|$result")
  echo "  $files: $result" >&2
done
if [ "$status" != 0 ]; then
  echo "mutation-check: the baseline does not pass, so a failure under a mutation would prove nothing; fix the tests first (logs: $LOGS)" >&2
  exit 1
fi

rows=()
failed_names=()
for n in "${names[@]}"; do
  patch="$MUT_DIR/$n.patch"
  applied=yes
  result=''
  if has_diff "$n"; then
    if ! git apply --check "$patch" 2>"$LOGS/$n.apply"; then
      applied="NO"
      result="PATCH DOES NOT APPLY: the code moved; regenerate $patch ($(head -n1 "$LOGS/$n.apply"))"
      echo "mutation-check: $n: $result" >&2
      status=1
    else
      mapfile -t touched < <(git apply --numstat "$patch" | cut -f3-)
      git apply "$patch"
    fi
  fi
  if [ "$applied" = yes ]; then
    for p in $(header "$n" remove); do
      if ! git ls-files --error-unmatch -- "$p" >/dev/null 2>&1; then
        applied="NO"
        result="FILE TO REMOVE IS GONE: $p is not tracked any more; update $patch"
        echo "mutation-check: $n: $result" >&2
        status=1
        break
      fi
      touched+=("$p")
      rm -f -- "$p"
    done
  fi
  if [ "$applied" = yes ]; then
    echo "mutation-check: $n: $(header "$n" mutation)" >&2
    mapfile -t runs < <(runs_of "$n")
    sum=$(run_runs "$n" "${runs[@]}")
    read -r failed total skipped errors <<<"${sum%%|*}"
    rest=${sum#*|}
    first=${rest%%|*}
    err=${rest#*|}
    if [ "$failed" -gt 0 ]; then
      result="caught ($failed failed: $first)"
    elif [ "$errors" -gt 0 ]; then
      result="BROKEN MUTATION: a test file did not run ($err); make the patch a change in behaviour"
      status=1
    else
      result="NOT CAUGHT ($total tests passed)"
      status=1
    fi
    echo "  $result" >&2
  fi
  restore
  rows+=("$n|$applied|$(files_of "$n")|$result")
  case "$result" in caught*) ;; *) failed_names+=("$n") ;; esac
done

elapsed=$(($(date +%s) - start))
echo
echo "baseline (no mutation): tests run | result"
for r in "${baseline_rows[@]}"; do echo "${r//|/ | }"; done
echo
echo "mutation | patch applied? | tests run | result"
for r in "${rows[@]}"; do echo "${r//|/ | }"; done
echo
echo "wall time: ${elapsed}s"
if [ "$status" != 0 ]; then
  echo "mutation-check: FAILED: ${failed_names[*]} (see their rows above)" >&2
fi
exit "$status"
