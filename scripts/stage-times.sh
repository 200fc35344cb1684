#!/usr/bin/env bash
# The time of each stage of `make test`, so that a run shows where its minutes went (the suite has a
# budget: see README, Tests and CI). Two commands over one record file, one line per stage:
#   stage-times.sh run FILE NAME COMMAND...   run COMMAND, record NAME, its seconds and its exit status,
#                                             and exit with that status
#   stage-times.sh report FILE                print the recorded stages as a table, with the total
# The Makefile calls `report` from an EXIT trap, so the table is printed after a failed stage as well.
set -uo pipefail

usage() {
  echo "usage: $0 run FILE NAME COMMAND... | $0 report FILE" >&2
  exit 2
}

[ $# -ge 2 ] || usage
action=$1 file=$2
shift 2

case $action in
  run)
    [ $# -ge 2 ] || usage
    name=$1
    shift
    started=$(date +%s)
    "$@"
    status=$?
    printf '%s\t%s\t%s\n' "$name" "$(( $(date +%s) - started ))" "$status" >>"$file"
    exit "$status"
    ;;
  report)
    [ -s "$file" ] || { echo "stage-times: no stage recorded" >&2; exit 0; }
    awk -F'\t' '
      BEGIN { printf "\n%-24s %8s %8s  %s\n", "stage", "seconds", "min:s", "result" }
      {
        printf "%-24s %8d %5d:%02d  %s\n", $1, $2, $2 / 60, $2 % 60, ($3 == 0 ? "ok" : "FAILED (" $3 ")")
        total += $2
      }
      END { printf "%-24s %8d %5d:%02d\n", "total", total, total / 60, total % 60 }
    ' "$file"
    ;;
  *)
    usage
    ;;
esac
