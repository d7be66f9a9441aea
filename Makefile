# vine — build, test, demo, bench.  Everything runs through the pinned Bun in node_modules.
BUN ?= ./node_modules/.bin/bun
SRC := $(shell find src ffi migrations -type f 2>/dev/null)

.PHONY: build deps system-deps test unit e2e demo bench soak typecheck clean bytecode-order

build: dist/vine

deps: node_modules/.bin/bun

# Debian packages the demo and the tests need (iproute2, nftables, iperf3, wireguard-go, ...).
system-deps:
	@bash .ci/system-deps

node_modules/.bin/bun: package.json
	@bash .ci/system-deps
	npm install --no-audit --no-fund
	@touch $@

# Workers are separate entry points so that `bun build --compile` embeds them. The executable carries
# precompiled bytecode (nothing is parsed at start), laid out by src/bytecode.order — the functions a
# daemon uses, recorded by `make bytecode-order` — so that fewer pages of the executable become
# resident (about 2.5 MB less idle RSS; a stale order file still applies, just less well).
BYTECODE_ORDER := $(wildcard src/bytecode.order)
dist/vine: node_modules/.bin/bun $(SRC) package.json
	@mkdir -p dist
	$(BUN) build --compile --bytecode --format=esm $(if $(BYTECODE_ORDER),--bytecode-order=$(BYTECODE_ORDER)) \
	  --minify-syntax --sourcemap=none \
	  src/main.ts src/dataplane/worker.ts \
	  --outfile dist/vine
	@./dist/vine --version

# Record src/bytecode.order from a two-host daemon run (root; namespaces only), then rebuild with it.
bytecode-order: build
	bash bench/bytecode-order.sh

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
