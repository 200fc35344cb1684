#!/usr/bin/env bash
# `molecule test -s SCENARIO`, one step at a time, so that the suite's report shows the time of each step
# (destroy, syntax, create, prepare, check, converge, idempotence, verify, destroy) and how busy the CPUs
# were meanwhile, and how many module runs the converge took on each host.
#
#   scripts/molecule-steps.sh SCENARIO
#
# The steps are the scenario's test sequence as Molecule itself reports it (its matrix, what `molecule
# matrix -s SCENARIO test` prints, read in-process). Each runs as its own `molecule STEP -s SCENARIO`,
# through scripts/stage-times.sh, recorded as "SCENARIO: STEP". A few of Molecule's commands run a
# sequence of their own (`molecule check` destroys, creates, prepares and converges first; `molecule
# create` prepares too): an extra base config (-c, after the project's .config/molecule/config.yml) makes
# each of them run its own step only, and the same matrix shows that every step now runs just itself.
# Should that not hold (a scenario that sets a sequence of its own) or Molecule's matrix not be readable,
# it runs plain `molecule test`, recorded as one step "SCENARIO: test".
#
# Like `molecule test`: the first failed step ends the sequence and `molecule destroy` (cleanup and
# destroy) runs then, after an interruption as well, and the script exits with the failed step's status.
#
# The converge step runs with the callback plugins/callback/module_runs.py enabled (aggregate, prints
# nothing); its counts are printed after the step and noted for the report.
#
# With STAGE_TIMES set (make test sets it to its record file) the steps are recorded there and `make test`
# prints them in its table at the end; without, the script prints its own table when it ends.
# Each step pays for one start of Molecule (about a second).
set -uo pipefail

scenario=${1:?usage: molecule-steps.sh SCENARIO}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[ -x "$root/.venv/bin/molecule" ] && PATH="$root/.venv/bin:$PATH"
stage_times="$root/scripts/stage-times.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/molecule-steps.XXXXXX")
times=${STAGE_TIMES:-$work/times}
own_report=$([ -z "${STAGE_TIMES:-}" ] && echo yes)
trap 'rm -rf "$work"' EXIT
interrupted=0 signal=
trap 'interrupted=130 signal=INT' INT
trap 'interrupted=143 signal=TERM' TERM

cat >"$work/one-step.yml" <<'YAML'
---
# Each of these commands runs only its own step (scripts/molecule-steps.sh).
scenario:
  check_sequence: [check]
  cleanup_sequence: [cleanup]
  converge_sequence: [converge]
  create_sequence: [create]
  destroy_sequence: [destroy]
YAML

# Written to the file $1: the project's base config as Molecule finds it (-c replaces it rather than adding
# to it), then the test sequence, one step a line, from Molecule's own matrix of the scenario (what
# `molecule matrix` prints) with that base config and the one above. Nothing, and the reason in the output,
# unless every step of it then runs only itself. One start of Molecule instead of a `molecule matrix` per step.
plan() {
  python3 - "$scenario" "$work/one-step.yml" "$1" <<'PYTHON'
import sys
from molecule import config, util
from molecule.scenarios import Scenarios
from molecule.shell import LOCAL_CONFIG

name, one_step, plan_file = sys.argv[1:]
glob = util.get_effective_molecule_glob().replace("*", name, 1)
base_configs = [path for path in (LOCAL_CONFIG, one_step) if path]
scenario_config = config.Config(molecule_file=util.abs_path(glob), args={"base_config": base_configs},
                                command_args={"subcommand": "test"})
matrix = Scenarios([scenario_config])._get_matrix()[scenario_config.scenario.name]
longer = {step: matrix.get(step) for step in matrix["test"] if matrix.get(step) != [step]}
if longer:
    sys.exit(f"molecule-steps: these steps run more than themselves: {longer}")
with open(plan_file, "w") as stream:
    stream.write("\n".join([LOCAL_CONFIG or "", *matrix["test"]]) + "\n")
PYTHON
}

plan "$work/plan" >"$work/plan.log" 2>&1
steps=()
[ -s "$work/plan" ] && mapfile -t steps <"$work/plan"
base_config=${steps[0]:-}
steps=("${steps[@]:1}")
if [ ${#steps[@]} -eq 0 ]; then
  tail -n 5 "$work/plan.log" >&2
  echo "molecule-steps: running \`molecule test -s $scenario\` as one step" >&2
  steps=(test)
fi
one_step=(${base_config:+-c "$base_config"} -c "$work/one-step.yml")
echo "molecule-steps: $scenario: ${steps[*]}" >&2
[ -n "$own_report" ] && "$stage_times" begin "$times"

# The converge's module runs from the callback's JSON: a table on stdout, a one-line summary in the file $2.
print_module_runs() {
  python3 - "$1" "$2" "$scenario" <<'PYTHON'
import json, sys
path, summary_path, scenario = sys.argv[1:]
with open(path) as stream:
    report = json.load(stream)
columns = ("ran", "changed", "failed", "retries", "skipped", "controller")
print(f"\n{scenario}: module runs of the converge, per host (plugins/callback/module_runs.py)")
print(f"{'host':<24}" + "".join(f"{name:>12}" for name in columns))
for host, counts in [*report["hosts"].items(), ("total", report["total"])]:
    print(f"{host:<24}" + "".join(f"{counts[name]:>12}" for name in columns))
print()
with open(summary_path, "w") as stream:
    hosts = ", ".join(f"{host} {counts['ran']}" for host, counts in report["hosts"].items())
    stream.write(f"{scenario}: module runs of the converge: {hosts} (total {report['total']['ran']})")
PYTHON
}

status=0
for step in "${steps[@]}"; do
  if [ $step = test ]; then
    command=(molecule test -s "$scenario")
  else
    command=(molecule "${one_step[@]}" "${step//_/-}" -s "$scenario")
  fi
  if [ $step = converge ]; then
    runs_file="$work/module-runs.json"
    ANSIBLE_CALLBACK_PLUGINS="$root/plugins/callback${ANSIBLE_CALLBACK_PLUGINS:+:$ANSIBLE_CALLBACK_PLUGINS}" \
    ANSIBLE_CALLBACKS_ENABLED="module_runs${ANSIBLE_CALLBACKS_ENABLED:+,$ANSIBLE_CALLBACKS_ENABLED}" \
    WSGI_MODULE_RUNS_FILE="$runs_file" \
      "$stage_times" run "$times" "$scenario: $step" "${command[@]}"
    status=$?
    if [ -s "$runs_file" ] && print_module_runs "$runs_file" "$work/module-runs.txt"; then
      "$stage_times" note "$times" "$(cat "$work/module-runs.txt")"
    fi
  else
    "$stage_times" run "$times" "$scenario: $step" "${command[@]}"
    status=$?
  fi
  [ $status -eq 0 ] && [ $interrupted -ne 0 ] && status=$interrupted
  [ $status -eq 0 ] || break
done

if [ $status -ne 0 ]; then
  echo "molecule-steps: $scenario: step '$step' failed ($status): destroying the instances" >&2
  # Cleanup and destroy, as `molecule test` does after a failed step (not the one-step config).
  "$stage_times" run "$times" "$scenario: destroy (after failure)" molecule destroy -s "$scenario"
fi
[ -n "$own_report" ] && "$stage_times" report "$times"
# Interrupted: die of the same signal once the instances are gone, so that the caller stops too.
if [ -n "$signal" ]; then
  trap - "$signal"
  kill -s "$signal" $$
fi
exit $status
