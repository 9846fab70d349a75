# The README's two commands: `make drill` (the main job) and `make test` (every
# test). Each installs what is missing (apt), configures, builds and runs.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps configure build test drill bench clean

all: build

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

drill: build
	$(BUILD)/bin/visorlab drill

bench: build
	$(BUILD)/bin/channel_bench --json

clean:
	rm -rf $(BUILD)
