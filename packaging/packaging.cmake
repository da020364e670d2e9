# Debian packaging (CPack DEB) and install rules for edgesync. Included at the end of the
# top-level CMakeLists.txt. One command builds the .deb for the configured architecture:
#   cmake -S . -B build-pkg -DCMAKE_BUILD_TYPE=Release -DEDGESYNC_BUILD_TESTS=OFF \
#         -DEDGESYNC_BUILD_BENCH=OFF [-DCMAKE_TOOLCHAIN_FILE=toolchains/<triple>.cmake]
#   cmake --build build-pkg --target package        # -> build-pkg/edgesync_<ver>-1_<arch>.deb
# Options:
#   EDGESYNC_PACKAGE_VERSION   upstream version in the package (default: project version);
#                              .ci/package-test.sh builds an older one to test upgrades.
#   EDGESYNC_PACKAGE_RELEASE   Debian revision (default 1).
#   EDGESYNC_PACKAGE_SHLIBDEPS AUTO|ON|OFF: compute Depends with dpkg-shlibdeps (needs the
#                              target's libraries installed through dpkg, i.e. native or
#                              multiarch); OFF maps the binary's DT_NEEDED entries through
#                              the table below instead (unpacked-sysroot cross builds).
#   EDGESYNC_HARDENING         Debian's hardening flags on all our targets (default ON).
# Design notes: docs/PACKAGING.md.

if(NOT TARGET edgesync)
  message(STATUS "packaging: no target 'edgesync' yet; install rules and CPack skipped")
  return()
endif()

set(EDGESYNC_PACKAGE_VERSION "${PROJECT_VERSION}" CACHE STRING "Upstream version of the .deb")
set(EDGESYNC_PACKAGE_RELEASE "1" CACHE STRING "Debian revision of the .deb")
set(EDGESYNC_PACKAGE_SHLIBDEPS "AUTO" CACHE STRING "dpkg-shlibdeps for Depends: AUTO, ON or OFF")
option(EDGESYNC_HARDENING "Debian hardening flags (fortify, stack protector, bindnow)" ON)

set(_es_pkg_dir ${CMAKE_CURRENT_LIST_DIR})
set(_es_gen_dir ${CMAKE_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${_es_gen_dir})

# ---- Hardening (what dpkg-buildflags would add) on every target we build ------------------
function(_es_collect_targets dir out)
  get_property(_t DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(_subs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(_s IN LISTS _subs)
    _es_collect_targets(${_s} _st)
    list(APPEND _t ${_st})
  endforeach()
  set(${out} ${_t} PARENT_SCOPE)
endfunction()
if(EDGESYNC_HARDENING)
  _es_collect_targets(${PROJECT_SOURCE_DIR} _es_all_targets)
  foreach(_t IN LISTS _es_all_targets)
    get_target_property(_type ${_t} TYPE)
    if(_type MATCHES "^(EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY)$")
      target_compile_options(${_t} PRIVATE -fstack-protector-strong -fstack-clash-protection
        $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2> -Wformat -Werror=format-security)
      if(NOT _type MATCHES "STATIC_LIBRARY|OBJECT_LIBRARY")
        target_link_options(${_t} PRIVATE -Wl,-z,relro -Wl,-z,now)
      endif()
    endif()
  endforeach()
endif()

# ---- Install rules ---------------------------------------------------------------------
# Relative destinations land under CMAKE_INSTALL_PREFIX (/usr in the package); /etc and
# /lib/systemd are absolute, as Debian 12 wants them.
install(TARGETS edgesync RUNTIME DESTINATION bin COMPONENT agent)
install(FILES ${PROJECT_SOURCE_DIR}/config/edgesync.example.json
        DESTINATION /etc/edgesync RENAME edgesync.json COMPONENT agent)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/config/contracts/
        DESTINATION share/edgesync/contracts OPTIONAL COMPONENT agent)
install(FILES ${_es_pkg_dir}/edgesync.service DESTINATION /lib/systemd/system COMPONENT agent)
install(FILES ${_es_pkg_dir}/edgesync.sysusers DESTINATION lib/sysusers.d RENAME edgesync.conf
        COMPONENT agent)
install(FILES ${_es_pkg_dir}/edgesync.tmpfiles DESTINATION lib/tmpfiles.d RENAME edgesync.conf
        COMPONENT agent)
install(FILES ${_es_pkg_dir}/debian/copyright DESTINATION share/doc/edgesync COMPONENT agent)
install(FILES ${_es_pkg_dir}/debian/lintian-overrides DESTINATION share/lintian/overrides
        RENAME edgesync COMPONENT agent)
install(FILES ${_es_pkg_dir}/edgesync.bash-completion
        DESTINATION share/bash-completion/completions RENAME edgesync COMPONENT agent)

# Debian changelog and man page, compressed reproducibly (gzip -n) as lintian wants.
set(EDGESYNC_DEB_VERSION "${EDGESYNC_PACKAGE_VERSION}-${EDGESYNC_PACKAGE_RELEASE}")
configure_file(${_es_pkg_dir}/debian/changelog.in ${_es_gen_dir}/changelog.Debian @ONLY)
configure_file(${_es_pkg_dir}/debian/edgesync.1 ${_es_gen_dir}/edgesync.1 COPYONLY)
# The fleet operator's guide (pushed configuration, keys, enrolment), referred to by the man page.
configure_file(${PROJECT_SOURCE_DIR}/docs/FLEET.md ${_es_gen_dir}/FLEET.md COPYONLY)
# The technician's runbook and the operator's view (status, repairs, health, metrics, logs).
configure_file(${PROJECT_SOURCE_DIR}/docs/OPERATIONS.md ${_es_gen_dir}/OPERATIONS.md COPYONLY)
find_program(EDGESYNC_GZIP gzip REQUIRED)
foreach(_f changelog.Debian edgesync.1 FLEET.md OPERATIONS.md)
  execute_process(COMMAND ${EDGESYNC_GZIP} -9nf -k ${_f} WORKING_DIRECTORY ${_es_gen_dir}
                  RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "gzip ${_f} failed")
  endif()
endforeach()
install(FILES ${_es_gen_dir}/changelog.Debian.gz ${_es_gen_dir}/FLEET.md.gz
        ${_es_gen_dir}/OPERATIONS.md.gz DESTINATION share/doc/edgesync COMPONENT agent)
install(FILES ${_es_gen_dir}/edgesync.1.gz DESTINATION share/man/man1 COMPONENT agent)


# ---- The hub's package (edgesync-hub), when the hub is built --------------------------------
if(TARGET edgesync-hub)
  set(_es_hub_dir ${_es_pkg_dir}/hub)
  install(TARGETS edgesync-hub RUNTIME DESTINATION bin COMPONENT hub)
  install(FILES ${PROJECT_SOURCE_DIR}/config/hub.example.json
          DESTINATION /etc/edgesync-hub RENAME hub.json COMPONENT hub)
  install(FILES ${_es_hub_dir}/edgesync-hub.service DESTINATION /lib/systemd/system COMPONENT hub)
  install(FILES ${_es_hub_dir}/edgesync-hub.sysusers DESTINATION lib/sysusers.d
          RENAME edgesync-hub.conf COMPONENT hub)
  install(FILES ${_es_pkg_dir}/debian/copyright DESTINATION share/doc/edgesync-hub COMPONENT hub)
  install(FILES ${_es_hub_dir}/lintian-overrides DESTINATION share/lintian/overrides
          RENAME edgesync-hub COMPONENT hub)
  configure_file(${_es_hub_dir}/changelog.in ${_es_gen_dir}/hub/changelog.Debian @ONLY)
  configure_file(${_es_hub_dir}/edgesync-hub.1 ${_es_gen_dir}/hub/edgesync-hub.1 COPYONLY)
  configure_file(${PROJECT_SOURCE_DIR}/docs/HUB.md ${_es_gen_dir}/hub/HUB.md COPYONLY)
  foreach(_f changelog.Debian edgesync-hub.1 HUB.md)
    execute_process(COMMAND ${EDGESYNC_GZIP} -9nf -k ${_f} WORKING_DIRECTORY ${_es_gen_dir}/hub
                    RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR "gzip hub/${_f} failed")
    endif()
  endforeach()
  install(FILES ${_es_gen_dir}/hub/changelog.Debian.gz ${_es_gen_dir}/hub/HUB.md.gz
          DESTINATION share/doc/edgesync-hub COMPONENT hub)
  install(FILES ${_es_gen_dir}/hub/edgesync-hub.1.gz DESTINATION share/man/man1 COMPONENT hub)
endif()

# ---- CPack DEB -------------------------------------------------------------------------
if(NOT CPACK_DEBIAN_PACKAGE_ARCHITECTURE)   # the cross toolchain files set it
  find_program(EDGESYNC_DPKG dpkg)
  if(EDGESYNC_DPKG)
    execute_process(COMMAND ${EDGESYNC_DPKG} --print-architecture
                    OUTPUT_VARIABLE CPACK_DEBIAN_PACKAGE_ARCHITECTURE
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
  endif()
endif()

set(CPACK_GENERATOR DEB)
# One .deb per component: edgesync (the agent, for the store boxes) and edgesync-hub (the central
# consumer), each with its own name, description, maintainer scripts and Depends.
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL agent)
if(TARGET edgesync-hub)
  list(APPEND CPACK_COMPONENTS_ALL hub)
endif()
set(CPACK_DEBIAN_AGENT_PACKAGE_NAME edgesync)
set(CPACK_DEBIAN_HUB_PACKAGE_NAME edgesync-hub)
set(CPACK_PACKAGE_NAME edgesync)
set(CPACK_PACKAGE_VENDOR "edgesync maintainers")
set(CPACK_PACKAGE_CONTACT "edgesync maintainers <maintainers@edgesync.example>")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "edgesync maintainers <maintainers@edgesync.example>")
set(CPACK_PACKAGE_VERSION "${EDGESYNC_PACKAGE_VERSION}")
set(CPACK_DEBIAN_PACKAGE_VERSION "${EDGESYNC_PACKAGE_VERSION}")
set(CPACK_DEBIAN_PACKAGE_RELEASE "${EDGESYNC_PACKAGE_RELEASE}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Per component: the first line is the synopsis; CPack indents the rest and turns the empty line
# into " .".
set(CPACK_DEBIAN_AGENT_DESCRIPTION "durable forwarder of point-of-sale events to MQTT
edgesync runs on in-store point-of-sale boxes. It accepts events from the
POS software on a local Unix socket, keeps them in an SQLite outbox that
survives crashes and power loss, and publishes them to the store hub over
MQTT with TLS once the network allows.

The package ships a hardened systemd service (Type=notify with watchdog).")
set(CPACK_DEBIAN_HUB_DESCRIPTION "edgesync hub: point-of-sale events to live stock in PostgreSQL
edgesync-hub consumes the events that edgesync agents on store boxes publish
to the fleet's MQTT brokers and commits their stock effects in PostgreSQL,
acknowledging each message only once it is committed. Events a broker took
but the hub never got are asked for again from the boxes' outboxes.

The package ships a hardened systemd service (Type=notify).")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://edgesync.example/")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    ${_es_pkg_dir}/debian/conffiles ${_es_pkg_dir}/debian/postinst
    ${_es_pkg_dir}/debian/prerm ${_es_pkg_dir}/debian/postrm)
set(CPACK_DEBIAN_HUB_PACKAGE_CONTROL_EXTRA
    ${_es_pkg_dir}/hub/conffiles ${_es_pkg_dir}/hub/postinst
    ${_es_pkg_dir}/hub/prerm ${_es_pkg_dir}/hub/postrm)
# systemd-sysusers (user/groups), the service manager itself, deb-systemd-helper.
set(_es_extra_depends "systemd, init-system-helpers (>= 1.54~)")

# Depends on shared libraries.
set(_es_shlibdeps "${EDGESYNC_PACKAGE_SHLIBDEPS}")
if(_es_shlibdeps STREQUAL "AUTO")
  set(_es_shlibdeps OFF)
  find_program(EDGESYNC_DPKG_SHLIBDEPS dpkg-shlibdeps)
  find_program(EDGESYNC_DPKG_QUERY dpkg-query)
  if(EDGESYNC_DPKG_SHLIBDEPS AND EDGESYNC_DPKG_QUERY AND NOT EDGESYNC_SYSROOT)
    # dpkg-shlibdeps resolves libraries through the dpkg database: the target's libsqlite3
    # must be installed as a package of that architecture (always true natively).
    execute_process(COMMAND ${EDGESYNC_DPKG_QUERY} -W -f=\${Status}
                            libsqlite3-0:${CPACK_DEBIAN_PACKAGE_ARCHITECTURE}
                    OUTPUT_VARIABLE _es_st ERROR_QUIET)
    if(_es_st MATCHES "install ok installed")
      set(_es_shlibdeps ON)
    endif()
  endif()
endif()
# Merged with shlibdeps' result, or filled in at cpack time from each binary's DT_NEEDED (see
# packaging/cpack-project.cmake).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ${_es_shlibdeps})
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "${_es_extra_depends}")
set(CPACK_DEBIAN_HUB_PACKAGE_DEPENDS "${_es_extra_depends}")
set(CPACK_EDGESYNC_SHLIBDEPS ${_es_shlibdeps})
set(CPACK_EDGESYNC_EXTRA_DEPENDS "${_es_extra_depends}")
set(CPACK_EDGESYNC_OBJDUMP "${CMAKE_OBJDUMP}")
set(CPACK_EDGESYNC_DEB_ARCH "${CPACK_DEBIAN_PACKAGE_ARCHITECTURE}")
file(GENERATE OUTPUT ${_es_gen_dir}/edgesync-binary-path.txt CONTENT "$<TARGET_FILE:edgesync>")
set(CPACK_EDGESYNC_BINARY_PATH_FILE ${_es_gen_dir}/edgesync-binary-path.txt)
if(TARGET edgesync-hub)
  file(GENERATE OUTPUT ${_es_gen_dir}/edgesync-hub-binary-path.txt
       CONTENT "$<TARGET_FILE:edgesync-hub>")
  set(CPACK_EDGESYNC_HUB_BINARY_PATH_FILE ${_es_gen_dir}/edgesync-hub-binary-path.txt)
endif()
set(CPACK_PROJECT_CONFIG_FILE ${_es_pkg_dir}/cpack-project.cmake)

include(CPack)
