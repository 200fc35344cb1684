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

.PHONY: deploy test venv engine images lab lab-down lint unit molecule clean

deploy: venv engine images lab
	ansible-playbook site.yml
	scripts/lab.sh urls

# Every stage through scripts/stage-times.sh, which prints how long each took at the end (after a failed
# stage too): the suite has a time budget (README, Tests and CI).
test:
	@times=$$(mktemp); trap 'scripts/stage-times.sh report "$$times"; rm -f "$$times"' EXIT; \
	stage() { scripts/stage-times.sh run "$$times" "$$@"; }; \
	stage venv $(MAKE) --no-print-directory venv && \
	stage images $(MAKE) --no-print-directory images && \
	stage lint $(MAKE) --no-print-directory lint && \
	stage unit $(MAKE) --no-print-directory unit && \
	for scenario in $(SCENARIOS); do stage "molecule $$scenario" molecule test -s $$scenario || exit 1; done

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

molecule: venv engine images
	@for scenario in $(SCENARIOS); do molecule test -s $$scenario || exit 1; done

clean: lab-down
	rm -rf $(VENV)
