# The two commands of README: `make demo` and `make test`; `make install`
# and `make deb` install or package the binaries, unit, man pages and completions.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
# The version of every binary, manual page and the .deb: one string, a valid
# Debian version (see scripts/version.sh for the mapping from git describe).
VERSION ?= $(shell scripts/version.sh)
# Release build flags, used by every target that builds the binaries (build,
# demo, install, deb) and by bench/idle.sh. -trimpath: no build paths in the
# binary. -s -w: no symbol table or DWARF, 17.5 MB to 12 MB on disk; neither is
# loaded at run time, so resident memory does not change (panics and pprof
# still name functions, from the Go function table). cgo stays on: os/user
# resolves `user =` and `group =` through NSS (LDAP, sssd); a static build
# would read /etc/passwd and /etc/group only.
GOBUILDFLAGS := -trimpath
LDFLAGS := -s -w -X github.com/gunisup/supervisor/daemon.Version=$(VERSION) -X github.com/gunisup/supervisor/internal/supctl.Version=$(VERSION)
# Where `make build` puts the binaries (bench/idle.sh sets it).
BINOUT ?= bin/
DEMO := $(CURDIR)/.demo

.PHONY: build demo test test-short soak chaos vet bench fuzz clean man install deb

# Installation directories (`make install PREFIX=/usr DESTDIR=/tmp/root`).
# The unit names /etc/gunisup/gunisup.toml whatever the prefix.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/gunisup
UNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
SYSCONFDIR ?= /etc
# Manual pages: docs/man/PAGE.md is the only source of PAGE.
MANPAGES := gunisup.8 supctl.8 gunisup.toml.5

build:
	go build $(GOBUILDFLAGS) -ldflags "$(LDFLAGS)" -o $(BINOUT) ./cmd/supervisor ./cmd/supctl

# Builds, makes a virtualenv for the example Flask app and runs the supervisor
# in the foreground: the app on http://127.0.0.1:8000, metrics on
# http://127.0.0.1:9321/metrics, control socket .demo/control.sock.
demo:
	scripts/deps.sh demo
	$(MAKE) build
	contrib/example/mkvenv.sh $(DEMO)/venv
	mkdir -p $(DEMO)/run
	sed 's|@ROOT@/.demo|$(DEMO)|g; s|@ROOT@|$(CURDIR)|g; s|@VENV@|$(DEMO)/venv|g' contrib/example/gunisup.toml.in > $(DEMO)/gunisup.toml
	bin/supervisor check -c $(DEMO)/gunisup.toml
	@echo "demo: try   curl 127.0.0.1:8000/   bin/supctl -s $(DEMO)/control.sock status   bin/supctl -s $(DEMO)/control.sock reload web"
	bin/supervisor -c $(DEMO)/gunisup.toml

# Every test: vet, then the whole suite under the race detector (unit tests,
# real Gunicorn end-to-end tests, Prometheus, PID namespaces). Vet also
# compiles the soak (build tag soak, run by make soak) so that it keeps building.
# The unit packages run in parallel. The end-to-end packages (test/e2e/...)
# run two at a time (-p 2), the longest first (reload, core, faults,
# upgrade) so that none ends alone: each test has its own directory,
# ephemeral ports, cgroups and process mark, and none asserts a latency
# that a neighbour's load would break. packaging comes last, beside the
# last short package: it touches only its own files under /etc, /run, /var
# and /usr (Debian's supervisor and this project's .deb), which no other
# test reads. GORACE=atexit_sleep_ms=0: a race-built binary (the tests'
# supervisor and supctl, run thousands of times) exits at once instead of
# sleeping 1 s first; a race it found is still reported and still makes it
# exit 66.
E2E_FIRST = ./test/e2e/reload/ ./test/e2e/core/ ./test/e2e/faults/ ./test/e2e/upgrade/
E2E_LAST = ./test/e2e/packaging/
test:
	scripts/deps.sh test
	go vet ./...
	go vet -tags soak ./test/e2e/reload/ ./test/e2e/faults/
	go vet -tags soak ./test/e2e/steer/ ./test/e2e/workers/
	GORACE=atexit_sleep_ms=0 go test -race -count=1 -timeout 20m $$(go list ./... | grep -v /test/e2e/)
	GORACE=atexit_sleep_ms=0 go test -race -count=1 -p 2 -timeout 40m $$(go list $(E2E_FIRST) ./test/e2e/... | grep -v /test/e2e/packaging$$) $(E2E_LAST)

test-short:
	go vet ./...
	go test -race -short -count=1 ./...

# The soaks, run by hand, not by make test or CI. The deploy soak: 100 swap
# deploys under load, then checks the supervisor for leaks (RSS, fds,
# threads, goroutines, zombies), 4 to 8 minutes; then the swap timings (20
# swaps under load, medians and maxima of each phase). The reliability soak:
# SOAK_RELOADS deploys under load (about 30 minutes for 1,000); prints failed
# requests and the supervisor's RSS, open fds and goroutines at start and end.
# The recycling soak: 10 minutes of requests to a worker leaking 5 MiB each
# under max_worker_rss (failed requests, workers recycled, largest RSS).
SOAK_RELOADS ?= 1000
soak:
	scripts/deps.sh test
	go test -race -tags soak -count=1 -timeout 30m -run 'TestReloadLeak|TestSwapTimings' -v ./test/e2e/reload/
	SOAK_RELOADS=$(SOAK_RELOADS) go test -tags soak -count=1 -v -timeout 90m -run 'TestSoak$$' ./test/e2e/faults/
	go test -tags soak -count=1 -v -timeout 20m -run 'TestRecycleSoak$$' ./test/e2e/workers/
	bench/steer.sh
	$(MAKE) systemd-test

# The shipped unit under a real systemd (systemd-nspawn, needs root and
# systemd-container): installs the .deb and runs test/systemd/inside.sh's
# checks (about 60 s after the .deb is built). Results in dist/systemd-results.
.PHONY: systemd-test
systemd-test: deb
	RESULTS=$(DIST)/systemd-results timeout 600 test/systemd/run.sh $$(ls -t $(DIST)/gunisup_*.deb | head -1)

bench:
	scripts/deps.sh bench
	bench/run.sh

# The logs acceptance, by hand (about 6 minutes, as root: it mounts a tmpfs):
# 100 MB against a full log disk and a stopped stdout reader under hey,
# rotation losing no line, 500 idle apps, CPU per 100k lines against
# supervisord. LOGS_MODES picks modes (see bench/logs.sh); BEFORE_REV=REV
# also measures the idle apps under the supervisor built from git REV.
.PHONY: bench-logs
bench-logs:
	scripts/deps.sh bench
	bench/logs.sh $(LOGS_MODES)

# Manual pages from docs/man/*.md with Debian's go-md2man, into bin/man/.
man:
	@command -v go-md2man >/dev/null || scripts/deps.sh man
	mkdir -p bin/man
	for p in $(MANPAGES); do \
		sed '1s/"gunisup"/"gunisup $(VERSION)"/' docs/man/$$p.md | go-md2man -out bin/man/$$p || exit 1; \
	done

# Binaries, systemd unit (ExecStart pointed at BINDIR), man pages, supctl's
# completions, README and example configuration.
install: build man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR) \
		$(DESTDIR)$(SYSCONFDIR)/gunisup
	install -m 0755 bin/supervisor bin/supctl $(DESTDIR)$(BINDIR)/
	sed 's|^ExecStart=/usr/bin/|ExecStart=$(BINDIR)/|' contrib/systemd/gunisup.service > bin/gunisup.service
	install -m 0644 bin/gunisup.service $(DESTDIR)$(UNITDIR)/gunisup.service
	for p in $(MANPAGES); do \
		gzip -9n < bin/man/$$p > $(DESTDIR)$(MANDIR)/man$${p##*.}/$$p.gz || exit 1; \
	done
	bin/supctl completion bash > $(DESTDIR)$(BASHCOMPDIR)/supctl
	bin/supctl completion zsh > $(DESTDIR)$(ZSHCOMPDIR)/_supctl
	bin/supctl completion fish > $(DESTDIR)$(FISHCOMPDIR)/supctl.fish
	chmod 0644 $(DESTDIR)$(BASHCOMPDIR)/supctl $(DESTDIR)$(ZSHCOMPDIR)/_supctl $(DESTDIR)$(FISHCOMPDIR)/supctl.fish
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 contrib/example/gunisup.toml contrib/systemd/web.socket $(DESTDIR)$(DOCDIR)/examples/

# $(DIST)/gunisup_VERSION_ARCH.deb, built with dpkg-deb from a staged install.
DIST ?= dist
deb:
	rm -rf $(DIST)/stage
	$(MAKE) install PREFIX=/usr DESTDIR=$(abspath $(DIST))/stage VERSION=$(VERSION)
	VERSION=$(VERSION) scripts/deb.sh $(DIST)/stage $(DIST)

# Every go test -fuzz target, one after another, each for FUZZTIME; the list
# of targets is in scripts/fuzz.sh. A crasher lands in the package's
# testdata/fuzz/, where `go test` keeps running it.
FUZZTIME ?= 60s
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# The chaos row of the fault table CHAOS_RUNS times in a row, CHAOS_SECONDS each.
CHAOS_RUNS ?= 10
CHAOS_SECONDS ?= 60
chaos:
	CHAOS_RUNS=$(CHAOS_RUNS) CHAOS_SECONDS=$(CHAOS_SECONDS) go test -race -count=1 -v -timeout 120m -run 'TestChaos$$' ./test/e2e/faults/

clean:
	rm -rf bin dist $(DEMO)
