# CPack post-build script (CPACK_POST_BUILD_SCRIPTS, deploy/CMakeLists.txt):
# finishes the sova-dbgsym .ddeb that CPACK_DEBIAN_DEBUGINFO_PACKAGE makes.
# CPack 3.25 writes its md5sums with the absolute paths of its staging
# directory (dpkg --verify and lintian find none of the files), and gives it
# no /usr/share/doc; Debian's dbgsym packages have the doc folder as a link
# to the package they belong to (they depend on its exact version), which
# is where lintian finds their copyright and changelog. The package is
# unpacked, given both, and built again.
foreach(pkg IN LISTS CPACK_PACKAGE_FILES)
  if(NOT pkg MATCHES "\\.ddeb$")
    continue()
  endif()
  set(tree "${pkg}.tree")
  file(REMOVE_RECURSE "${tree}")
  execute_process(COMMAND dpkg-deb -R "${pkg}" "${tree}" COMMAND_ERROR_IS_FATAL ANY)
  file(MAKE_DIRECTORY "${tree}/usr/share/doc")
  file(CREATE_LINK "${CPACK_PACKAGE_NAME}" "${tree}/usr/share/doc/${CPACK_PACKAGE_NAME}-dbgsym" SYMBOLIC)
  execute_process(COMMAND sh -c [[cd "$1" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum >DEBIAN/md5sums]]
                  sh "${tree}" COMMAND_ERROR_IS_FATAL ANY)
  execute_process(COMMAND dpkg-deb --root-owner-group -b "${tree}" "${pkg}"
                  OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE "${tree}")
endforeach()
