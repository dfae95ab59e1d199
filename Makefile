# Quarrel's front door. The real build is CMake + Ninja (CMakeLists.txt).
#   make            Release binary at build/quarrel
#   make run        install deps, build, run the main job on MODEL
#   make test       install deps, Debug+ASan+UBSan build, every test through ctest
#   make bench      benchmarks (bench/), never part of the tests
#   make fuzz       clang libFuzzer targets, FUZZ_SECONDS each
MODEL        ?= ../shared/models/stories260K.gguf
PROMPT       ?= Once upon a time
FUZZ_SECONDS ?= 60
JOBS         ?= $(shell nproc)
CC           ?= cc

.PHONY: all release deps run test bench fuzz clean

all: release

deps:
	@scripts/deps.sh

release: deps
	@cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS)

run: release
	./build/quarrel run -m $(MODEL) -p "$(PROMPT)" -n 128

test: deps
	@cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Debug -DQUARREL_SANITIZE=ON -DQUARREL_WERROR=ON >/dev/null
	@cmake --build build-test -j $(JOBS)
	@cd build-test && ctest --output-on-failure -j $(JOBS)

bench: release
	@bench/run.sh build

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUARREL_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build build-test build-fuzz
