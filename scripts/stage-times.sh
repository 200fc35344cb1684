#!/usr/bin/env bash
# The time of each stage of `make test`, and how busy the machine's CPUs were meanwhile, so that a run shows
# where its minutes went and which stages wait rather than compute (the suite has a budget: see README,
# Tests and CI). Commands over one record file, one line per stage:
#   stage-times.sh begin FILE                 note the start of the run (for the total's wall clock and CPU)
#   stage-times.sh run FILE NAME COMMAND...   run COMMAND, record NAME, its times and its exit status,
#                                             and exit with that status
#   stage-times.sh note FILE TEXT             a line of text for the report, printed after the table
#   stage-times.sh report FILE                print the recorded stages as a table, with the total
# The Makefile calls `report` from an EXIT trap, so the table is printed after a failed stage as well.
#
# "CPUs busy" is the busy CPU time of the whole machine during the stage (user, nice, system, irq, softirq
# and steal time from /proc/stat) over its wall time: "1.50 of 2" means one and a half of the two CPUs
# were busy on average. It counts everything the machine ran, other work and parallel stages included.
#
# A stage named "S: STEP" (scripts/molecule-steps.sh records each Molecule step of scenario S so) is listed
# under the stage "molecule S", indented, in the order the steps ran; the other stages in the order they
# started. Stages that ran at the same time as others (make test runs one scenario beside lint and unit)
# say so in the result column.
set -uo pipefail

usage() {
  echo "usage: $0 begin FILE | $0 run FILE NAME COMMAND... | $0 note FILE TEXT | $0 report FILE" >&2
  exit 2
}

# Seconds since the epoch, with microseconds (a '.' whatever the locale's decimal point).
now() {
  local t=$EPOCHREALTIME
  printf '%s' "${t/,/.}"
}

# Busy CPU ticks of the whole machine so far (the first line of /proc/stat: user nice system idle iowait
# irq softirq steal ...; guest time is already in user).
busy_ticks() {
  local _cpu user nice system _idle _iowait irq softirq steal _rest
  read -r _cpu user nice system _idle _iowait irq softirq steal _rest </proc/stat
  echo $(( user + nice + system + irq + softirq + steal ))
}

hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpus=$(grep -c '^cpu[0-9]' /proc/stat)

[ $# -ge 2 ] || usage
action=$1 file=$2
shift 2

case $action in
  begin)
    printf '#begin\t%s\t%s\n' "$(now)" "$(busy_ticks)" >>"$file"
    ;;
  note)
    [ $# -eq 1 ] || usage
    printf '#note\t%s\n' "${1//$'\n'/ }" >>"$file"
    ;;
  run)
    [ $# -ge 2 ] || usage
    name=$1
    shift
    started=$(now) busy_before=$(busy_ticks)
    # Interrupted along with COMMAND (Ctrl-C, or make test stopping its background stages): record the
    # stage as failed with COMMAND's status, then die of the same signal, so that the caller stops too.
    signal=
    trap 'signal=INT' INT
    trap 'signal=TERM' TERM
    "$@"
    status=$?
    ended=$(now) busy_after=$(busy_ticks)
    # name, start, end, busy CPU seconds, CPUs, exit status
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$started" "$ended" \
      "$(awk -v t=$(( busy_after - busy_before )) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" \
      "$cpus" "$status" >>"$file"
    if [ -n "$signal" ]; then
      trap - "$signal"
      kill -s "$signal" $$
    fi
    exit "$status"
    ;;
  report)
    grep -qv '^#' "$file" 2>/dev/null || { echo "stage-times: no stage recorded" >&2; exit 0; }
    awk -F'\t' -v now="$(now)" -v busy_now="$(busy_ticks)" -v hz="$hz" -v cpus="$cpus" '
      function clock(s) { s = int(s + 0.5); return sprintf("%d:%02d", s / 60, s % 60) }
      function outcome(status) { return status == 0 ? "ok" : "FAILED (" status ")" }
      function line(label, wall, busy, n, result,   s, used) {
        # /proc/stat counts in ticks: a short stage can seem to use a little more than every CPU.
        used = (wall >= 1 && busy >= 0 ? sprintf("%.2f of %d", (busy / wall > n ? n : busy / wall), n) : "-")
        s = sprintf("%-34s %8.1f %7s  %-10s  %s", label, wall, clock(wall), used, result)
        sub(/ +$/, "", s)
        print s
      }
      $1 == "#begin" { begin = $2; begin_busy = $3; next }
      $1 == "#note" { notes[++notes_n] = $2; next }
      {
        n++; name[n] = $1; start[n] = $2; stop[n] = $3; busy[n] = $4; ncpu[n] = $5; status[n] = $6
        if (first == "" || $2 < first) first = $2
        if (last == "" || $3 > last) last = $3
        if ($1 ~ /^molecule /) parent_of[substr($1, 10)] = n
      }
      END {
        # A step "S: STEP" belongs to the stage "molecule S", when there is one.
        for (i = 1; i <= n; i++) {
          parent[i] = 0
          if (match(name[i], /^[^:]+: /)) {
            scenario = substr(name[i], 1, RLENGTH - 2)
            if (scenario in parent_of) parent[i] = parent_of[scenario]
          }
        }
        # Top-level stages in the order they started (insertion sort: a few dozen rows).
        top = 0
        for (i = 1; i <= n; i++) {
          if (parent[i]) continue
          j = ++top
          while (j > 1 && start[order[j - 1]] > start[i]) { order[j] = order[j - 1]; j-- }
          order[j] = i
        }
        printf "\n%-34s %8s %7s  %-10s  %s\n", "stage", "seconds", "min:s", "CPUs busy", "result"
        for (k = 1; k <= top; k++) {
          i = order[k]
          result = outcome(status[i])
          beside = ""
          for (m = 1; m <= top; m++) {
            j = order[m]
            # Overlapping by more than a second: run at the same time.
            if (j != i && start[j] + 1 < stop[i] && start[i] + 1 < stop[j])
              beside = beside (beside == "" ? "" : ", ") name[j]
          }
          if (beside != "") result = result ", beside " beside
          line(name[i], stop[i] - start[i], busy[i], ncpu[i], result)
          for (c = 1; c <= n; c++)
            if (parent[c] == i)
              line("  " name[c], stop[c] - start[c], busy[c], ncpu[c], outcome(status[c]))
        }
        if (begin != "") line("total (wall clock)", now - begin, (busy_now - begin_busy) / hz, cpus, "")
        else line("total (wall clock)", last - first, -1, cpus, "")
        if (notes_n) print ""
        for (k = 1; k <= notes_n; k++) print notes[k]
      }
    ' "$file"
    ;;
  *)
    usage
    ;;
esac
