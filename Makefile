# Quarrel's front door. The real build is CMake + Ninja (CMakeLists.txt).
#   make            Release binary at build/quarrel
#   make run        install deps, build, serve MODEL on http://HOST:PORT (quarrel serve; the chat UI at /)
#   make test       install deps, Debug+ASan+UBSan build, every test through ctest
#   make bench      benchmarks (bench/), never part of the tests
#   make fuzz       clang libFuzzer targets, FUZZ_SECONDS each
MODEL        ?= ../shared/models/stories260K.gguf
HOST         ?= 127.0.0.1
PORT         ?= 8080
FUZZ_SECONDS ?= 60
JOBS         ?= $(shell nproc)
CC           ?= cc

.PHONY: all release deps run test bench fuzz clean

all: release

deps:
	@scripts/deps.sh

release: deps
	@cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS) --target quarrel

run: release
	@echo "quarrel: serving $(MODEL); open http://$(HOST):$(PORT)/ in a browser to chat  (API: /api, /ws, OpenAI: /v1; Ctrl-C stops)"
	./build/quarrel serve -m $(MODEL) --host $(HOST) --port $(PORT)

test: deps
	@cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Debug -DQUARREL_SANITIZE=ON -DQUARREL_WERROR=ON >/dev/null
	@cmake --build build-test -j $(JOBS)
	@cd build-test && ctest --output-on-failure -j $(JOBS)

bench: release
	@cmake --build build -j $(JOBS)
	@bench/run.sh build

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUARREL_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build build-test build-fuzz
