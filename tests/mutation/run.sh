#!/usr/bin/env bash
# make mutation [MODULE=services/projection/suppression.py]
# make mutation-open [MODULE=...]   (run.sh --open [MODULE])
#
# Mutation testing of the pure cores with mutmut (configured in pyproject.toml [tool.mutmut]):
# every mutant is run against the unit tests that call the mutated function (tests/unit only,
# mutmut maps them in a first clean run), with at most 2 workers. Then the reviewer's mutations
# of issue 19 (tests/mutation/issue_mutations.py) are checked, and the report is written:
# results per module in tests/mutation/results.json, docs/mutation-report.md from them.
# Fails when a module scores below 85 %, a surviving mutant has no reviewed reason in
# tests/mutation/survivors.toml, or an issue mutation survives.
# Every run starts from a fresh mutants/ directory (a copy of the current code and tests).
# Without MODULE every module is measured; MODULE=file measures that file alone (its mutants
# against the current tests) and replaces only its entry in results.json: the other modules
# keep their last measurement (the report flags a module whose file changed since).
# --open re-runs only the mutants the last run in this checkout left open (mutants/ kept; the
# test mapping rebuilt), against the current tests: the quick check after adding a test.
# Modules changed since that run are skipped (re-measure them: MODULE=...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

OPEN=""
if [[ "${1:-}" == "--open" ]]; then
    OPEN=1
    shift
fi
MODULE="${1:-}"
LOG=.state/logs/mutation.log
mkdir -p .state/logs
args=(--max-children 2)
record=(--run full)
if [[ -n "$MODULE" ]]; then
    [[ -f "$MODULE" ]] || { echo "mutation: no such file: $MODULE" >&2; exit 2; }
    args+=("$(echo "${MODULE%.py}" | tr / .).*")
    record=(--run alone --module "$MODULE")
fi
commit="$(git rev-parse --short=12 HEAD)"
# (the recorded results themselves do not make the measured code dirty)
if [[ -n "$(git status --porcelain -- services shared tests pyproject.toml \
        ':(exclude)tests/mutation/results.json')" ]]; then
    commit="${commit}+dirty"
fi
if [[ -n "$OPEN" ]]; then
    [[ -d mutants ]] || { echo "mutation: no previous run here (mutants/): make mutation" >&2; exit 2; }
    open_list="$(.venv/bin/python -m tests.mutation.report --list-open ${MODULE:+--module "$MODULE"})"
    mapfile -t names <<<"$open_list"
    [[ -n "$open_list" ]] || names=()
    if [[ ${#names[@]} -eq 0 ]]; then
        echo "mutation: no open mutants${MODULE:+ in $MODULE}"
        exit 0
    fi
    args=(--max-children 2 "${names[@]}")
    record=(--run open ${MODULE:+--module "$MODULE"})
    rm -f mutants/mutmut-stats.json
else
    rm -rf mutants
    .venv/bin/python -m tests.mutation.report --snapshot
fi

start=$(date +%s)
echo "mutation: mutmut run (${#args[@]} args) on ${commit} (log: $LOG)"
if ! .venv/bin/mutmut run "${args[@]}" >"$LOG" 2>&1; then
    tr '\r' '\n' <"$LOG" | tail -n 30 >&2
    echo "mutation: mutmut failed (full output: $LOG)" >&2
    exit 1
fi
secs=$(( $(date +%s) - start ))
echo "mutation: mutmut took ${secs} s"

rc=0
echo "mutation: the reviewer's mutations of issue 19"
.venv/bin/python -m tests.mutation.issue_mutations ${MODULE:+--module "$MODULE"} || rc=1
.venv/bin/python -m tests.mutation.report --record "${record[@]}" --commit "$commit" \
    --seconds "$secs" || rc=1
exit $rc
