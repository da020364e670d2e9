# Runs inside cpack (CPACK_PROJECT_CONFIG_FILE), after packaging.cmake's settings.

# dpkg-shlibdeps searches the library directories of DEB_HOST_ARCH: for a cross package it
# must be the package's architecture, not the build host's.
if(CPACK_EDGESYNC_DEB_ARCH)
  set(ENV{DEB_HOST_ARCH} "${CPACK_EDGESYNC_DEB_ARCH}")
endif()

if(NOT CPACK_EDGESYNC_SHLIBDEPS)
  # No dpkg database for the target's libraries (unpacked-sysroot cross build): map the
  # binary's DT_NEEDED entries to Debian 12 packages. Minimum versions are bookworm's.
  set(_es_soname_map
    "libc.so.6=libc6 (>= 2.36)"
    "libm.so.6=libc6 (>= 2.36)"
    "libstdc++.so.6=libstdc++6 (>= 12)"
    "libgcc_s.so.1=libgcc-s1 (>= 3.5)"
    "libsqlite3.so.0=libsqlite3-0 (>= 3.40.1)"
    "libpaho-mqttpp3.so.1=libpaho-mqttpp3-1 (>= 1.2.0)"
    "libpaho-mqtt3as.so.1=libpaho-mqtt1.3 (>= 1.3.12)"
    "libpaho-mqtt3a.so.1=libpaho-mqtt1.3 (>= 1.3.12)"
    "libsystemd.so.0=libsystemd0 (>= 252)"
    "libcpp-httplib.so.0.11=libcpp-httplib0.11 (>= 0.11.4)"
    "libssl.so.3=libssl3 (>= 3.0.0)"
    "libcrypto.so.3=libssl3 (>= 3.0.0)"
    "libmbedtls.so.14=libmbedtls14 (>= 2.28.3)"
    "libmbedx509.so.1=libmbedx509-1 (>= 2.28.3)"
    "libmbedcrypto.so.7=libmbedcrypto7 (>= 2.28.3)"
    "libpqxx-6.4.so=libpqxx-6.4 (>= 6.4.5)"
    "libpq.so.5=libpq5 (>= 15)"
    "libmosquitto.so.1=libmosquitto1 (>= 2.0.11)")
  # The Depends of the binary whose path is in `path_file`, into `out`.
  function(_es_depends_of path_file out)
    file(READ "${path_file}" _es_bin)
    execute_process(COMMAND ${CPACK_EDGESYNC_OBJDUMP} -p "${_es_bin}"
                    OUTPUT_VARIABLE _es_dump RESULT_VARIABLE _es_rc)
    if(NOT _es_rc EQUAL 0)
      message(FATAL_ERROR "objdump -p ${_es_bin} failed")
    endif()
    string(REGEX MATCHALL "NEEDED +[^\n]+" _es_needed "${_es_dump}")
    set(_es_deps)
    foreach(_n IN LISTS _es_needed)
      string(REGEX REPLACE "NEEDED +" "" _n "${_n}")
      string(STRIP "${_n}" _n)
      if(_n MATCHES "^ld-linux")
        continue()
      endif()
      set(_found "")
      foreach(_m IN LISTS _es_soname_map)
        string(FIND "${_m}" "=" _eq)
        string(SUBSTRING "${_m}" 0 ${_eq} _so)
        if(_so STREQUAL _n)
          math(EXPR _eq "${_eq} + 1")
          string(SUBSTRING "${_m}" ${_eq} -1 _found)
        endif()
      endforeach()
      if(NOT _found)
        message(FATAL_ERROR "packaging: no Debian package known for ${_n} (needed by ${_es_bin});"
                            " add it to the table in packaging/cpack-project.cmake")
      endif()
      list(APPEND _es_deps "${_found}")
    endforeach()
    list(REMOVE_DUPLICATES _es_deps)
    list(JOIN _es_deps ", " _es_deps)
    set(${out} "${_es_deps}" PARENT_SCOPE)
  endfunction()
  _es_depends_of("${CPACK_EDGESYNC_BINARY_PATH_FILE}" _es_agent_deps)
  set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "${_es_agent_deps}, ${CPACK_EDGESYNC_EXTRA_DEPENDS}")
  if(CPACK_EDGESYNC_HUB_BINARY_PATH_FILE)
    _es_depends_of("${CPACK_EDGESYNC_HUB_BINARY_PATH_FILE}" _es_hub_deps)
    set(CPACK_DEBIAN_HUB_PACKAGE_DEPENDS "${_es_hub_deps}, ${CPACK_EDGESYNC_EXTRA_DEPENDS}")
  endif()
endif()
