# vine — build, test, demo, bench.  Everything runs through the pinned Bun in node_modules.
BUN ?= ./node_modules/.bin/bun
SRC := $(shell find src ffi migrations -type f 2>/dev/null)

.PHONY: build deps system-deps test unit e2e demo bench soak typecheck clean

build: dist/vine

deps: node_modules/.bin/bun

# Debian packages the demo and the tests need (iproute2, nftables, iperf3, wireguard-go, ...).
system-deps:
	@bash .ci/system-deps

node_modules/.bin/bun: package.json
	@bash .ci/system-deps
	npm install --no-audit --no-fund
	@touch $@

# Workers are separate entry points so that `bun build --compile` embeds them.
dist/vine: node_modules/.bin/bun $(SRC) package.json
	@mkdir -p dist
	$(BUN) build --compile --minify-syntax --sourcemap=none \
	  src/main.ts src/dataplane/worker.ts \
	  --outfile dist/vine
	@./dist/vine --version

typecheck: deps
	$(BUN) x tsc -p tsconfig.json

unit: deps
	bash test/run.sh unit

e2e: build
	bash test/run.sh e2e

# Every test: unit tests, then namespace tests against the compiled binary.
test: system-deps build
	bash test/run.sh all

demo: system-deps build
	$(BUN) examples/multi-pc/demo.ts $(if $(KEEP),--keep,)

bench: build
	bash bench/run.sh

# test/soak: the scale test (SCALE_HOSTS daemons, default 20, full mesh) and the soak test (three daemons
# under iperf3 + ping, direct and relayed, SOAK_SECONDS, default 600). Not in `make test`.
soak: build
	bash test/run.sh soak

clean:
	rm -rf dist
