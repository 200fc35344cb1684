# The two commands of the README:
#   make deploy   set up the controller and a local lab of systemd containers, then run site.yml on it
#   make test     lint, unit tests and every Molecule scenario (what CI runs)
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
DEBIAN_VERSIONS := 12 13
# Every scenario under molecule/, the fleet (four hosts, the longest) last.
ALL_SCENARIOS := $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
SCENARIOS := $(filter-out fleet,$(ALL_SCENARIOS)) $(filter fleet,$(ALL_SCENARIOS))
# make test runs these scenarios beside the lint and unit stages rather than after them: acme is small, and
# those stages leave the CPUs mostly idle (unit waits on the network). The others then run one at a time.
BESIDE_SCENARIOS := $(filter acme,$(ALL_SCENARIOS))
AFTER_SCENARIOS := $(filter-out $(BESIDE_SCENARIOS),$(SCENARIOS))

.PHONY: deploy test venv engine images lab lab-down lint unit molecule clean

deploy: venv engine images lab
	ansible-playbook site.yml
	scripts/lab.sh urls

# Every stage through scripts/stage-times.sh, which prints how long each took and how busy the CPUs were at
# the end (after a failed stage too): the suite has a time budget (README, Tests and CI). Each Molecule
# scenario runs step by step through scripts/molecule-steps.sh, so the table has a row per step as well.
# The scenarios of BESIDE_SCENARIOS run in the background while lint and unit run: a process group of
# their own (if make test is interrupted, it stops them and waits until they have destroyed their
# instances), their output kept in a log and printed when they end; a failure on either side fails the
# run once both have ended.
test:
	@export STAGE_TIMES=$$(mktemp); beside_log=$$(mktemp); beside=; \
	trap 'status=$$?; [ -z "$$beside" ] || { kill -TERM -- -$$beside 2>/dev/null; \
	  echo "make test: stopping molecule $(BESIDE_SCENARIOS) (it destroys its instances)"; wait $$beside; }; \
	  scripts/stage-times.sh report "$$STAGE_TIMES"; rm -f "$$STAGE_TIMES" "$$beside_log"; exit $$status' EXIT; \
	stage() { scripts/stage-times.sh run "$$STAGE_TIMES" "$$@"; }; \
	scenarios() { \
	  for scenario; do stage "molecule $$scenario" scripts/molecule-steps.sh "$$scenario" || return 1; done; }; \
	scripts/stage-times.sh begin "$$STAGE_TIMES"; \
	stage venv $(MAKE) --no-print-directory venv && \
	stage images $(MAKE) --no-print-directory images || exit 1; \
	set -m; { trap : INT TERM; scenarios $(BESIDE_SCENARIOS); } >"$$beside_log" 2>&1 </dev/null & beside=$$!; set +m; \
	echo "make test: molecule $(BESIDE_SCENARIOS) runs beside lint and unit, its output follows when it ends"; \
	stage lint $(MAKE) --no-print-directory lint && stage unit $(MAKE) --no-print-directory unit; front=$$?; \
	[ $$front -eq 0 ] || echo "make test: lint or unit failed; waiting for molecule $(BESIDE_SCENARIOS) to end"; \
	wait $$beside; behind=$$?; beside=; \
	echo "===== molecule $(BESIDE_SCENARIOS), run beside lint and unit: its output ====="; \
	cat "$$beside_log"; \
	echo "===== end of the output of molecule $(BESIDE_SCENARIOS)" \
	  "($$([ $$behind -eq 0 ] && echo ok || echo FAILED)) ====="; \
	[ $$front -eq 0 ] && [ $$behind -eq 0 ] || exit 1; \
	scenarios $(AFTER_SCENARIOS)

$(BIN)/ansible-playbook: requirements.txt server/pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --editable ./server
	touch $@

# sslyze (the TLS profile check of the modes scenario) in a venv of its own: it pins a cryptography
# older than ansible's.
SSLYZE := $(CURDIR)/.venv-sslyze/bin/sslyze
$(SSLYZE): requirements-sslyze.txt
	python3 -m venv .venv-sslyze
	.venv-sslyze/bin/pip install --quiet -r requirements-sslyze.txt
	touch $@

venv: $(BIN)/ansible-playbook $(SSLYZE)

engine:
	scripts/ensure-docker.sh

images: engine
	@for version in $(DEBIAN_VERSIONS); do scripts/build-image.sh $$version || exit 1; done

lab: venv engine images
	scripts/lab.sh up

lab-down:
	scripts/lab.sh down

lint: venv
	yamllint --strict .
	ansible-lint --profile production
	ruff check filter_plugins plugins molecule tests scripts bench
	cd server && ruff check .

unit: venv
	pytest -q tests
	cd server && pytest -q

# Each scenario as `molecule test` does it, step by step, with a table of the steps' times at its end.
molecule: venv engine images
	@for scenario in $(SCENARIOS); do scripts/molecule-steps.sh $$scenario || exit 1; done

clean: lab-down
	rm -rf $(VENV)
