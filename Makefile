# refgc — the top-level Makefile wraps CMake.
#
#   make            build the release library, the tools and the tests (build/release)
#   make run        build, run the traced demonstration, then `refgc report` and `refgc export`:
#                   refgc-report.html, .massif, .heapsnapshot, .folded, .speedscope.json, .dot
#                   (.svg with Graphviz), refgc-report-snapshots/, .txt, .json (tools/run_demo.sh)
#   make test       every test: release, ASan+UBSan, TSan (threaded tests), valgrind,
#                   and a clang build; ends with "total: N passed, N failed"
#   make bench      the heap benchmarks against glibc, mimalloc, jemalloc, tcmalloc
#   make install    PREFIX=/usr/local (library, headers, pkg-config, CMake package)
#
# WERROR=ON turns warnings into errors (CI sets it). JOBS sets build parallelism.

JOBS ?= 2
WERROR ?= OFF
PREFIX ?= /usr/local
CMAKE ?= cmake
CMAKE_FLAGS = -DREFGC_WERROR=$(WERROR)

.PHONY: all build run test test-release test-asan test-tsan test-valgrind test-clang bench \
        install clean

all: build

build:
	@$(CMAKE) -S . -B build/release -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@$(CMAKE) --build build/release -j$(JOBS)

run: build
	@sh tools/run_demo.sh build/release refgc-report

test:
	@sh tests/run_all.sh

test-release:
	@sh tests/run_all.sh release
test-asan:
	@sh tests/run_all.sh asan
test-tsan:
	@sh tests/run_all.sh tsan
test-valgrind:
	@sh tests/run_all.sh valgrind
test-clang:
	@sh tests/run_all.sh clang

bench: build
	python3 bench/heap_bench.py --rounds 5
	python3 bench/trace_bench.py --rounds 5 --ref 1ce1410

install: build
	$(CMAKE) --install build/release --prefix $(PREFIX)

clean:
	rm -rf build refgc-report.txt refgc-report.json refgc-report-snapshots refgc-report.html \
	  refgc-report.massif refgc-report.heapsnapshot refgc-report.folded \
	  refgc-report.speedscope.json refgc-report.dot refgc-report.svg
