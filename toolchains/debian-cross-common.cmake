# Shared part of the Debian cross toolchain files. Not used on its own: the per-architecture
# files set EDGESYNC_CROSS_TRIPLE, EDGESYNC_DEB_ARCH, EDGESYNC_QEMU and CMAKE_SYSTEM_PROCESSOR
# and then include this file.
#
# Two layouts for the target's libraries are supported:
#   multiarch (default): the :ARCH -dev packages are installed on the build host with
#     `dpkg --add-architecture ARCH` and live in /usr/lib/<triple>, /usr/include/<triple>.
#   unpacked sysroot: EDGESYNC_SYSROOT (CMake cache variable or environment variable) names a
#     folder into which the same :ARCH packages were unpacked with `dpkg -x` (.ci/cross.sh does
#     this when the host cannot co-install them, e.g. when the mirror's ARCH index lags behind
#     the host's own package versions). Arch-independent headers (asio, nlohmann-json, CLI11)
#     still come from the host's /usr/include.
# In both layouts the C library and libstdc++ are the cross toolchain's (/usr/<triple>).

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_LIBRARY_ARCHITECTURE ${EDGESYNC_CROSS_TRIPLE})

set(CMAKE_C_COMPILER ${EDGESYNC_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${EDGESYNC_CROSS_TRIPLE}-g++)
find_program(EDGESYNC_CROSS_STRIP ${EDGESYNC_CROSS_TRIPLE}-strip)
if(EDGESYNC_CROSS_STRIP)
  set(CMAKE_STRIP ${EDGESYNC_CROSS_STRIP} CACHE FILEPATH "strip for the target")
endif()

# Make the sysroot choice survive into try_compile() projects.
if(NOT EDGESYNC_SYSROOT AND DEFINED ENV{EDGESYNC_SYSROOT})
  set(EDGESYNC_SYSROOT "$ENV{EDGESYNC_SYSROOT}")
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EDGESYNC_SYSROOT)

set(_es_cross_root /usr/${EDGESYNC_CROSS_TRIPLE})
set(_es_libdirs)
if(EDGESYNC_SYSROOT)
  # The target packages' files, searched before the host's /usr (arch-independent headers).
  set(CMAKE_FIND_ROOT_PATH ${EDGESYNC_SYSROOT} ${_es_cross_root} /)
  set(_es_inc "${EDGESYNC_SYSROOT}/usr/include")
  set(_es_libdirs "${EDGESYNC_SYSROOT}/usr/lib/${EDGESYNC_CROSS_TRIPLE}"
                  "${EDGESYNC_SYSROOT}/lib/${EDGESYNC_CROSS_TRIPLE}")
  # -idirafter keeps the cross compiler's own libc/libstdc++ headers first.
  string(APPEND CMAKE_C_FLAGS_INIT " -idirafter ${_es_inc}/${EDGESYNC_CROSS_TRIPLE} -idirafter ${_es_inc}")
  string(APPEND CMAKE_CXX_FLAGS_INIT " -idirafter ${_es_inc}/${EDGESYNC_CROSS_TRIPLE} -idirafter ${_es_inc}")
  foreach(_d IN LISTS _es_libdirs)
    string(APPEND CMAKE_EXE_LINKER_FLAGS_INIT " -L${_d} -Wl,-rpath-link,${_d}")
    string(APPEND CMAKE_SHARED_LINKER_FLAGS_INIT " -L${_d} -Wl,-rpath-link,${_d}")
  endforeach()
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "${EDGESYNC_SYSROOT}")
  set(ENV{PKG_CONFIG_LIBDIR}
      "${EDGESYNC_SYSROOT}/usr/lib/${EDGESYNC_CROSS_TRIPLE}/pkgconfig:${EDGESYNC_SYSROOT}/usr/share/pkgconfig")
else()
  # Multiarch: target libraries are in /usr/lib/<triple> of the host itself.
  set(CMAKE_FIND_ROOT_PATH ${_es_cross_root} /)
  set(_es_libdirs "/usr/lib/${EDGESYNC_CROSS_TRIPLE}" "/lib/${EDGESYNC_CROSS_TRIPLE}")
  # Only the target's .pc files; never the host's x86 ones.
  set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${EDGESYNC_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig")
  unset(ENV{PKG_CONFIG_SYSROOT_DIR})
  unset(ENV{PKG_CONFIG_PATH})
endif()
find_program(EDGESYNC_CROSS_PKG_CONFIG NAMES pkg-config pkgconf)  # env above selects the target .pc files
set(PKG_CONFIG_EXECUTABLE ${EDGESYNC_CROSS_PKG_CONFIG} CACHE FILEPATH "pkg-config for the target")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)   # build tools run on the host
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)    # asio/json/CLI11 headers are arch-independent
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Run target executables (ctest, gtest_discover_tests, try_run) under qemu-user. The dynamic
# loader and the C library must come from the same glibc build: mixing the cross toolchain's
# loader (/usr/<triple>, libc6-ARCH-cross) with the multiarch libc6:ARCH that the -dev packages
# pull in makes pthread_create spin forever. So: multiarch -> the host's / (libc6:ARCH);
# unpacked sysroot (no libc6 in it) -> the cross toolchain's C library, plus the sysroot's
# libraries through the guest's LD_LIBRARY_PATH (-E).
if(EDGESYNC_SYSROOT)
  set(EDGESYNC_EMULATOR ${EDGESYNC_QEMU} -L ${_es_cross_root})
else()
  set(EDGESYNC_EMULATOR ${EDGESYNC_QEMU} -L /)
endif()
if(EDGESYNC_SYSROOT)
  list(JOIN _es_libdirs ":" _es_ldpath)
  list(APPEND EDGESYNC_EMULATOR -E LD_LIBRARY_PATH=${_es_ldpath})
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR ${EDGESYNC_EMULATOR})
# The same command line as one string, for harnesses that spawn the agent binary themselves:
# tests/ read it from the environment variable EDGESYNC_BIN_WRAPPER (see docs/PACKAGING.md).
list(JOIN EDGESYNC_EMULATOR " " EDGESYNC_BIN_WRAPPER_DEFAULT)

# Debian architecture of the packages CPack makes (packaging/packaging.cmake reads it).
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${EDGESYNC_DEB_ARCH})
