#!/usr/bin/env bash
# Mutation testing: cargo-mutants makes one small change at a time (a
# function that returns a default, a comparison turned around, an
# operator swapped) in the parts where a wrong answer matters, and runs the
# tests that cover them; a mutant the tests do not catch is a gap.
#
#   bash scripts/mutants.sh            # every group below
#   bash scripts/mutants.sh twilio     # one group: twilio, answer, replies
#   bash scripts/mutants.sh --iterate  # again, only the mutants not caught last time
#
# Too slow for CI (over an hour on two cores): run it before a release, or
# after changing one of these files. Results, and why each missed mutant is
# harmless or which test now catches it: docs/testing.md. Needs
# cargo-mutants (cargo install --locked cargo-mutants); the output goes to
# target/mutants/<group>/mutants.out (caught.txt, missed.txt, timeout.txt,
# unviable.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null ||
  { echo "needs cargo-mutants: cargo install --locked cargo-mutants" >&2; exit 2; }

# Tests build faster without debug info; the properties run 200 cases
# instead of 2000.
export CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_TEST_DEBUG=0 PROPTEST_CASES=200
# The tests spend most of their time waiting on the servers they start (the
# twilio group's: 15 s of wall clock for 3.5 s of CPU), so three mutants are
# tested at once.
JOBS=${MUTANTS_JOBS:-3}

# A group: its name, the files mutated, and the test targets run for each
# mutant (the unit tests of the library always).
run() { # name, "files", "test targets"
  local name=$1 files=() tests=(--lib) file target
  for file in $2; do files+=(--file "$file"); done
  for target in $3; do tests+=(--test "$target"); done
  echo "== $name: $(cargo mutants --list "${files[@]}" | wc -l) mutants" >&2
  mkdir -p "target/mutants/$name"
  # Exit status 2: some mutants missed, 3: some timed out; both reported.
  local status=0
  cargo mutants --no-shuffle --jobs "$JOBS" --timeout 120 --build-timeout 600 $ITERATE \
    --output "target/mutants/$name" "${files[@]}" -- "${tests[@]}" || status=$?
  case $status in 0 | 2 | 3) ;; *) echo "cargo mutants failed ($status)" >&2; exit "$status" ;; esac
  local out="target/mutants/$name/mutants.out" kind
  for kind in caught missed timeout unviable; do
    printf '%s %s: %s\n' "$name" "$kind" "$(wc -l <"$out/$kind.txt" 2>/dev/null || echo 0)"
  done
}

group() {
  case $1 in
    twilio) run twilio "src/twilio/*.rs" "signature messages properties webhook check" ;;
    answer) run answer "src/answer.rs src/routes.rs src/repeats.rs src/replies.rs src/handler.rs" \
      "signature messages replies webhook later programs ngrok shutdown cli" ;;
    replies) run replies "src/program.rs src/replying.rs" "programs later docs" ;;
    *) echo "unknown group $1: twilio, answer or replies" >&2; exit 2 ;;
  esac
}

ITERATE=""
if [ "${1:-}" = --iterate ]; then ITERATE=--iterate; shift; fi
if [ $# -eq 0 ]; then set -- twilio answer replies; fi
for name in "$@"; do group "$name"; done
