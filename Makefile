# The two commands of README: `make demo` and `make test`.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/gunisup/supervisor/daemon.Version=$(VERSION)
DEMO := $(CURDIR)/.demo

.PHONY: build demo test test-short vet bench fuzz clean

build:
	go build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/supervisor ./cmd/supctl

# Builds, makes a virtualenv for the example Flask app and runs the supervisor
# in the foreground: the app on http://127.0.0.1:8000, metrics on
# http://127.0.0.1:9321/metrics, control socket .demo/control.sock.
demo:
	scripts/deps.sh demo
	$(MAKE) build
	contrib/example/mkvenv.sh $(DEMO)/venv
	mkdir -p $(DEMO)/run
	sed 's|@ROOT@/.demo|$(DEMO)|g; s|@ROOT@|$(CURDIR)|g; s|@VENV@|$(DEMO)/venv|g' contrib/example/supervisor.toml.in > $(DEMO)/supervisor.toml
	bin/supervisor check -c $(DEMO)/supervisor.toml
	@echo "demo: try   curl 127.0.0.1:8000/   bin/supctl -s $(DEMO)/control.sock status   bin/supctl -s $(DEMO)/control.sock reload web"
	bin/supervisor -c $(DEMO)/supervisor.toml

# Every test: vet, then the whole suite under the race detector (unit tests,
# real Gunicorn end-to-end tests, Prometheus, PID namespaces).
test:
	scripts/deps.sh test
	go vet ./...
	# -p 1: the end-to-end packages each drive real Gunicorn under load; one at
	# a time keeps their timing honest on a 2-core machine.
	go test -race -count=1 -p 1 -timeout 80m ./...

test-short:
	go vet ./...
	go test -race -short -count=1 ./...

bench:
	scripts/deps.sh bench
	bench/run.sh

# Every go test -fuzz target, one after another, each for FUZZTIME; the list
# of targets is in scripts/fuzz.sh. A crasher lands in the package's
# testdata/fuzz/, where `go test` keeps running it.
FUZZTIME ?= 60s
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

clean:
	rm -rf bin $(DEMO)
