# The layering rule of CMakeLists.txt ("layers"), checked over the whole tree:
#  1. every quoted include in src/<layer>/ is "<allowed layer>/<file>" (the layer itself or one
#     in LNX_USES_<layer>); relative or unqualified includes, which would bypass the include
#     views, are errors;
#  2. each layer's include view holds exactly the allowed layers;
#  3. for every forbidden (layer, other layer) pair, a probe including a real header of the
#     other layer fails to compile with the layer's view because the header is not found.
# Run by CTest: cmake -DLNX_LAYERS_FILE=… -DLNX_SOURCE_DIR=… -DLNX_INCLUDE_VIEWS=… -DLNX_CXX=…
#                     -DLNX_WORK_DIR=… -P check_layers.cmake
cmake_minimum_required(VERSION 3.20)
include(${LNX_LAYERS_FILE})  # LNX_LAYERS, LNX_USES_<layer>
set(errors "")
file(REMOVE_RECURSE ${LNX_WORK_DIR})
file(MAKE_DIRECTORY ${LNX_WORK_DIR})

set(probes 0)
foreach(layer IN LISTS LNX_LAYERS)
  set(allowed ${layer} ${LNX_USES_${layer}})
  list(JOIN allowed ", " allowed_text)

  # 1. The includes of the layer's files.
  file(GLOB_RECURSE files ${LNX_SOURCE_DIR}/src/${layer}/*.h ${LNX_SOURCE_DIR}/src/${layer}/*.cpp)
  foreach(f IN LISTS files)
    file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
    file(RELATIVE_PATH rel ${LNX_SOURCE_DIR} ${f})
    foreach(line IN LISTS lines)
      if(NOT line MATCHES "#[ \t]*include[ \t]*\"([^\"]*)\"")
        continue()
      endif()
      set(inc "${CMAKE_MATCH_1}")
      if(inc MATCHES "^([a-z_0-9]+)/")
        if(NOT CMAKE_MATCH_1 IN_LIST allowed)
          string(APPEND errors "${rel}: includes \"${inc}\", but ${layer} may use only ${allowed_text}\n")
        endif()
      else()
        string(APPEND errors "${rel}: include \"${inc}\" is not of the form \"<layer>/<file>\"\n")
      endif()
    endforeach()
  endforeach()

  # 2. The view's entries.
  set(view ${LNX_INCLUDE_VIEWS}/${layer})
  file(GLOB entries LIST_DIRECTORIES true RELATIVE ${view} ${view}/*)
  list(SORT entries)
  set(expected ${allowed})
  list(SORT expected)
  if(NOT entries STREQUAL expected)
    string(APPEND errors "include view ${view} holds [${entries}], expected [${expected}]\n")
  endif()
  foreach(dep IN LISTS allowed)
    if(NOT IS_DIRECTORY ${view}/${dep})
      string(APPEND errors "${view}/${dep} does not lead to src/${dep}\n")
    endif()
  endforeach()

  # 3. Probes of the forbidden layers.
  foreach(other IN LISTS LNX_LAYERS)
    if(other IN_LIST allowed)
      continue()
    endif()
    file(GLOB headers RELATIVE ${LNX_SOURCE_DIR}/src ${LNX_SOURCE_DIR}/src/${other}/*.h)
    list(FILTER headers EXCLUDE REGEX "_internal\\.h$")
    list(SORT headers)
    if(NOT headers)
      string(APPEND errors "src/${other} has no public header to probe\n")
      continue()
    endif()
    list(GET headers 0 header)
    set(probe ${LNX_WORK_DIR}/${layer}_includes_${other}.cpp)
    file(WRITE ${probe} "#include \"${header}\"\n")
    execute_process(COMMAND ${LNX_CXX} -std=c++20 -fsyntax-only -I ${view} ${probe}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    math(EXPR probes "${probes} + 1")
    string(REGEX REPLACE "([.+])" "\\\\\\1" header_re "${header}")
    if(rc EQUAL 0)
      string(APPEND errors "${layer} can include \"${header}\" (layer ${other} is not allowed)\n")
    elseif(NOT out MATCHES "${header_re}('? file not found|: No such file or directory)")
      string(APPEND errors "the probe of ${layer} including \"${header}\" failed for another reason:\n${out}\n")
    endif()
  endforeach()
endforeach()

if(errors)
  message(FATAL_ERROR "layering violations:\n${errors}")
endif()
message(STATUS "layers: includes of src/ follow the allowed edges; ${probes} forbidden includes fail to compile")
