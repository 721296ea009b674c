# protoc with nanopb's plugin and ours (protoc-gen-sprpc) into the build tree.
#
#   sandproc_generate(OUT_VAR SRV_VAR PROTO_ROOT OUT_DIR file.proto...)
# sets OUT_VAR to the generated .c files clients and servers share (messages,
# method tables, stubs) and SRV_VAR to the server's handler tables (*.srv.c);
# headers land beside them in OUT_DIR.

find_program(PROTOC protoc REQUIRED)
find_program(PROTOC_GEN_NANOPB protoc-gen-nanopb REQUIRED)

# Both plugins need python3 with google.protobuf (Debian's python3-protobuf,
# pulled in by the nanopb package); a python3 earlier on PATH may lack it.
find_program(SANDPROC_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT SANDPROC_PYTHON)
  find_program(SANDPROC_PYTHON NAMES python3 REQUIRED)
endif()
execute_process(COMMAND ${SANDPROC_PYTHON} -c "import google.protobuf"
  RESULT_VARIABLE _sp_pb_missing OUTPUT_QUIET ERROR_QUIET)
if(_sp_pb_missing)
  message(FATAL_ERROR "${SANDPROC_PYTHON} cannot import google.protobuf (apt-get install nanopb)")
endif()

set(SANDPROC_PLUGIN_SRC ${CMAKE_CURRENT_LIST_DIR}/protoc-gen-sprpc.py)
set(SANDPROC_PLUGIN ${CMAKE_BINARY_DIR}/protoc-gen-sprpc)
file(WRITE ${SANDPROC_PLUGIN}
  "#!/bin/sh\nexec '${SANDPROC_PYTHON}' '${SANDPROC_PLUGIN_SRC}' \"$@\"\n")
file(CHMOD ${SANDPROC_PLUGIN} PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
  GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

function(sandproc_generate out_var srv_var proto_root out_dir)
  set(outputs)
  set(srv_outputs)
  set(deps)
  foreach(proto ${ARGN})
    string(REGEX REPLACE "\\.proto$" "" base ${proto})
    list(APPEND outputs ${out_dir}/${base}.pb.c ${out_dir}/${base}.rpc.c)
    list(APPEND srv_outputs ${out_dir}/${base}.srv.c)
    list(APPEND deps ${proto_root}/${proto})
    if(EXISTS ${proto_root}/${base}.options)
      list(APPEND deps ${proto_root}/${base}.options)
    endif()
  endforeach()
  file(MAKE_DIRECTORY ${out_dir})
  add_custom_command(
    OUTPUT ${outputs} ${srv_outputs}
    COMMAND ${PROTOC}
      --plugin=protoc-gen-nanopb=${PROTOC_GEN_NANOPB}
      --plugin=protoc-gen-sprpc=${SANDPROC_PLUGIN}
      -I${proto_root}
      --nanopb_out=${out_dir}
      --sprpc_out=${out_dir}
      ${ARGN}
    WORKING_DIRECTORY ${proto_root}
    DEPENDS ${deps} ${SANDPROC_PLUGIN_SRC}
    COMMENT "protoc (nanopb + sprpc): ${ARGN}"
    VERBATIM)
  set(${out_var} ${outputs} PARENT_SCOPE)
  set(${srv_var} ${srv_outputs} PARENT_SCOPE)
endfunction()

# What protoc writes into out_dir for the API's .proto files (SANDPROC_PROTOS)
# with another language's message generator and protoc-gen-sprpc lang=...:
# <base>MSG_SUFFIX for every file, <base>STUB_SUFFIX for files with services
# (the plugin writes stubs only for those). DEPS_VAR gets the .proto paths.
function(sandproc_lang_outputs out_var deps_var out_dir msg_suffix stub_suffix)
  set(outputs)
  set(deps)
  foreach(proto ${SANDPROC_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" base ${proto})
    list(APPEND outputs ${out_dir}/${base}${msg_suffix})
    list(APPEND deps ${PROJECT_SOURCE_DIR}/proto/${proto})
    file(STRINGS ${PROJECT_SOURCE_DIR}/proto/${proto} has_service REGEX "^service ")
    if(has_service)
      list(APPEND outputs ${out_dir}/${base}${stub_suffix})
    endif()
  endforeach()
  set(${out_var} ${outputs} PARENT_SCOPE)
  set(${deps_var} ${deps} PARENT_SCOPE)
endfunction()
