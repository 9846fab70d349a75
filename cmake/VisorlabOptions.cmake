# Project-wide compile options, carried by the interface target visorlab::options
# that every visorlab target links, so nothing is set through global flags.

set(VISORLAB_SANITIZE "" CACHE STRING
  "Comma-separated sanitizers for the whole build (e.g. address,undefined or thread)")

add_library(visorlab_options INTERFACE)
add_library(visorlab::options ALIAS visorlab_options)
target_compile_options(visorlab_options INTERFACE -Wall -Wextra)
# Headers are included as "channel/…", "cli/…" from the repository root.
target_include_directories(visorlab_options INTERFACE ${PROJECT_SOURCE_DIR})

if(VISORLAB_SANITIZE)
  target_compile_options(visorlab_options INTERFACE
    -fsanitize=${VISORLAB_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(visorlab_options INTERFACE -fsanitize=${VISORLAB_SANITIZE})
endif()

# The libFuzzer build (scripts/fuzz.sh, clang only): every library the fuzz
# targets link is instrumented for coverage and checked by ASan and UBSan.
option(VISORLAB_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)
if(VISORLAB_FUZZ AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  target_compile_options(visorlab_options INTERFACE
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(visorlab_options INTERFACE -fsanitize=address,undefined)
endif()
