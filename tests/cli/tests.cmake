# The refgc command's tests (included by tests/CMakeLists.txt): tests/snapgen.c writes
# deterministic snapshots (the cli_snapgen fixture), then tests/cli/run.sh runs one check per
# CTest test: golden outputs of top and diff, bad input, and each export read by its consumer
# (ms_print, the heap snapshot checker and Chrome DevTools' own loader, the folded-stack
# checker, speedscope's JSON schema, Graphviz's dot; DevTools and the schema come from npm into
# the build tree the first time). A test whose consumer is missing (or that npm cannot fetch)
# prints "skipped: why" and exits 77, which CTest reports as skipped. REFGC_UPDATE_GOLDEN=1 in
# the environment rewrites tests/cli/*.expected (then review the diff).
if(TARGET refgc_cli AND TARGET refgc_static)
  add_executable(snapgen ${CMAKE_CURRENT_SOURCE_DIR}/snapgen.c)
  # -O0 -g: the same frames, functions and lines in every build type and with every compiler
  target_compile_options(snapgen PRIVATE ${REFGC_TEST_WARNINGS} -O0 -g -fno-omit-frame-pointer
    -fno-inline -fno-optimize-sibling-calls)
  target_link_libraries(snapgen PRIVATE refgc_static)
  set_target_properties(snapgen PROPERTIES ENABLE_EXPORTS ON)

  set(REFGC_CLI_TESTS snapgen golden bad_input unusual_input massif heapsnapshot
    heapsnapshot_devtools folded speedscope speedscope_schema dot)
  foreach(t ${REFGC_CLI_TESTS})
    add_test(NAME cli_${t} COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/run.sh ${t}
      $<TARGET_FILE:refgc_cli> $<TARGET_FILE:snapgen> ${PROJECT_SOURCE_DIR}
      ${CMAKE_CURRENT_BINARY_DIR}/cli)
    set_tests_properties(cli_${t} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS cli)
    if(NOT t STREQUAL "snapgen")
      set_tests_properties(cli_${t} PROPERTIES FIXTURES_REQUIRED cli_snapshots)
    endif()
  endforeach()
  set_tests_properties(cli_snapgen PROPERTIES FIXTURES_SETUP cli_snapshots)
endif()
