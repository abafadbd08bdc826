# Installs the build tree into a fresh prefix and builds and runs a consumer project against it:
#  - the prefix holds the layer libraries, the linearnexus executable, the CMake package and
#    the public headers under include/linearnexus/<layer>/, no private (*_internal.h) header,
#    and every quoted include of an installed header resolves inside the installed tree;
#  - tests/install/consumer configures with find_package(LinearNexus) from that prefix (and
#    only there: the work directory is new and the package registry is off), builds, runs and
#    prints "consumer: ok";
#  - the installed executable runs.
# Run by CTest: cmake -DLNX_BUILD_DIR=… -DLNX_WORK_DIR=… -DLNX_CONSUMER_DIR=… -DLNX_CXX=…
#                     [-DLNX_LAUNCHER=…] [-DLNX_GENERATOR=…] -P run_install_test.cmake
cmake_minimum_required(VERSION 3.20)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${LNX_WORK_DIR}/prefix)
set(consumer_build ${LNX_WORK_DIR}/consumer)
file(REMOVE_RECURSE ${LNX_WORK_DIR})  # never a stale prefix or consumer build
file(MAKE_DIRECTORY ${LNX_WORK_DIR})

run("cmake --install" ${CMAKE_COMMAND} --install ${LNX_BUILD_DIR} --prefix ${prefix})

# What was installed.
set(include_root ${prefix}/include/linearnexus)
foreach(f include/linearnexus/tensor/ops.h include/linearnexus/models/lm_model.h bin/linearnexus)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "${prefix}/${f} was not installed")
  endif()
endforeach()
file(GLOB_RECURSE configs ${prefix}/*/LinearNexusConfig.cmake)
file(GLOB_RECURSE libraries ${prefix}/*/liblnx_tensor.a)
if(NOT configs OR NOT libraries)
  message(FATAL_ERROR "LinearNexusConfig.cmake or liblnx_tensor.a missing under ${prefix}")
endif()
file(GLOB_RECURSE private_headers ${include_root}/*_internal.h)
if(private_headers)
  message(FATAL_ERROR "private headers were installed: ${private_headers}")
endif()
file(GLOB_RECURSE headers RELATIVE ${include_root} ${include_root}/*.h)
set(unresolved "")
foreach(h IN LISTS headers)
  file(STRINGS ${include_root}/${h} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line IN LISTS lines)
    if(line MATCHES "\"([^\"]*)\"")  # (EXISTS would be evaluated before MATCHES in one if)
      if(NOT EXISTS ${include_root}/${CMAKE_MATCH_1})
        string(APPEND unresolved "  ${h} includes \"${CMAKE_MATCH_1}\"\n")
      endif()
    endif()
  endforeach()
endforeach()
if(unresolved)
  message(FATAL_ERROR "installed headers include headers that are not installed:\n${unresolved}")
endif()
list(LENGTH headers n_headers)

# A consumer project against the prefix.
set(configure_args -S ${LNX_CONSUMER_DIR} -B ${consumer_build} -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_CXX_COMPILER=${LNX_CXX} -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(LNX_GENERATOR)
  list(APPEND configure_args -G ${LNX_GENERATOR})
endif()
if(LNX_LAUNCHER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER_LAUNCHER=${LNX_LAUNCHER})
endif()
run("configuring the consumer" ${CMAKE_COMMAND} ${configure_args})
file(STRINGS ${consumer_build}/CMakeCache.txt found REGEX "^LinearNexus_DIR:")
string(FIND "${found}" "${prefix}/" at)
if(NOT at GREATER -1)
  message(FATAL_ERROR "the consumer found LinearNexus elsewhere: ${found}")
endif()
run("building the consumer" ${CMAKE_COMMAND} --build ${consumer_build})
run("running the consumer" ${consumer_build}/consumer)
if(NOT last_output MATCHES "consumer: ok")
  message(FATAL_ERROR "the consumer did not report ok:\n${last_output}")
endif()
message(STATUS "${last_output}")
run("running the installed executable" ${prefix}/bin/linearnexus list presets)
if(NOT last_output MATCHES "hybrid-tiny")
  message(FATAL_ERROR "`linearnexus list presets` printed:\n${last_output}")
endif()
message(STATUS "install: ${n_headers} public headers; consumer built and ran against ${prefix}")
file(REMOVE_RECURSE ${LNX_WORK_DIR})
