# Packaging: desktop integration (menu entry, icons, MIME types, AppStream, man pages, bash
# completion) and CPack, which makes a Debian package and a .tar.gz from the install rules.
# Included at the end of the top-level CMakeLists.txt, after every target's install rules.
# Usage and the state of the Windows and macOS notes: installer/README.md.

set(CKPT_INSTALLER_DIR ${CMAKE_CURRENT_LIST_DIR})
set(CKPT_INSTALLER_BINARY_DIR ${CMAKE_BINARY_DIR}/installer)

# Bump with project(VERSION): the date goes into the AppStream release, the man pages and the
# Debian changelog (a fixed date, so that two builds of one version give the same files).
set(CKPT_RELEASE_DATE "2026-11-28")

set(CKPT_PACKAGE_MAINTAINER "Checkpoint Studio <dev@checkpoint.studio>" CACHE STRING
    "Maintainer of the Debian package (Name <address>)")
set(CKPT_HOMEPAGE_URL "https://checkpoint.studio/" CACHE STRING
    "Project home page: Debian Homepage field, AppStream <url>")
# The repository has no public address recorded yet: set this to where its raw files are served
# (for GitHub: https://raw.githubusercontent.com/OWNER/REPO/BRANCH).
set(CKPT_SCREENSHOT_BASE_URL "https://raw.githubusercontent.com/checkpoint-studio/checkpoint-studio/main"
    CACHE STRING "Base URL of the repository's files; AppStream screenshots are under docs/screenshots/")
set(CKPT_DEBIAN_REVISION 1 CACHE STRING "Debian revision of the package (version ${PROJECT_VERSION}-REVISION)")

set(CKPT_APPSTREAM_ID studio.checkpoint.CheckpointStudio)
set(CKPT_DEBIAN_VERSION ${PROJECT_VERSION}-${CKPT_DEBIAN_REVISION})

# The loader (model/compute/computeloader.cpp) looks for the module in ../lib/checkpoint-studio
# relative to the program. GNUInstallDirs answers lib/<multiarch> for CMAKE_INSTALL_PREFIX=/usr on
# Debian, which the loader would not find.
if(NOT CKPT_MODULE_INSTALL_DIR STREQUAL "lib/checkpoint-studio")
    message(WARNING "installer: the compute module installs to ${CKPT_MODULE_INSTALL_DIR}, but the programs "
                    "look for it in ../lib/checkpoint-studio: configure with -DCMAKE_INSTALL_LIBDIR=lib "
                    "(or leave CMAKE_INSTALL_PREFIX at its default; CPack packages for /usr either way)")
endif()

# --- Generated files --------------------------------------------------------------------------
find_program(CKPT_GZIP gzip REQUIRED)

# RFC 2822 form of the release date for the Debian changelog (weekday by Sakamoto's method).
string(REGEX MATCH "^([0-9][0-9][0-9][0-9])-([0-9][0-9])-([0-9][0-9])$" _ckpt_date "${CKPT_RELEASE_DATE}")
if(NOT _ckpt_date)
    message(FATAL_ERROR "installer: CKPT_RELEASE_DATE must be YYYY-MM-DD, not '${CKPT_RELEASE_DATE}'")
endif()
math(EXPR _ckpt_year "${CMAKE_MATCH_1}")
math(EXPR _ckpt_month "1${CMAKE_MATCH_2} - 100")
math(EXPR _ckpt_day "1${CMAKE_MATCH_3} - 100")
set(_ckpt_month_offsets 0 3 2 5 0 3 5 1 4 6 2 4)
set(_ckpt_month_names Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec)
set(_ckpt_weekday_names Sun Mon Tue Wed Thu Fri Sat)
math(EXPR _ckpt_index "${_ckpt_month} - 1")
list(GET _ckpt_month_offsets ${_ckpt_index} _ckpt_offset)
list(GET _ckpt_month_names ${_ckpt_index} _ckpt_month_name)
set(_ckpt_y ${_ckpt_year})
if(_ckpt_month LESS 3)
    math(EXPR _ckpt_y "${_ckpt_y} - 1")
endif()
math(EXPR _ckpt_weekday "(${_ckpt_y} + ${_ckpt_y} / 4 - ${_ckpt_y} / 100 + ${_ckpt_y} / 400 + ${_ckpt_offset} + ${_ckpt_day}) % 7")
list(GET _ckpt_weekday_names ${_ckpt_weekday} _ckpt_weekday_name)
set(CKPT_RELEASE_DATE_RFC2822 "${_ckpt_weekday_name}, ${CMAKE_MATCH_3} ${_ckpt_month_name} ${_ckpt_year} 12:00:00 +0000")

set(CPACK_PACKAGE_CONTACT "${CKPT_PACKAGE_MAINTAINER}")

# Man pages and the Debian changelog are compressed with gzip -9n, as Debian policy asks (no name
# or time stamp in the header, so the bytes depend on the text only). Done at configure time:
# configure_file makes CMake re-run when a template changes.
function(ckpt_configure_gzip template output)
    configure_file(${template} ${output} @ONLY)
    execute_process(COMMAND ${CKPT_GZIP} -9 -n -f -k ${output} RESULT_VARIABLE result)
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "installer: gzip ${output} failed: ${result}")
    endif()
endfunction()

ckpt_configure_gzip(${CKPT_INSTALLER_DIR}/man/ckpt.1.in ${CKPT_INSTALLER_BINARY_DIR}/ckpt.1)
ckpt_configure_gzip(${CKPT_INSTALLER_DIR}/debian/changelog.in ${CKPT_INSTALLER_BINARY_DIR}/changelog.Debian)

# --- Install rules ----------------------------------------------------------------------------
set(CKPT_DOC_DIR ${CMAKE_INSTALL_DATADIR}/doc/checkpoint-studio)

install(FILES ${CKPT_INSTALLER_BINARY_DIR}/ckpt.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CKPT_INSTALLER_DIR}/completion/ckpt.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME ckpt)
install(FILES ${CKPT_INSTALLER_DIR}/debian/copyright ${CKPT_INSTALLER_BINARY_DIR}/changelog.Debian.gz
        DESTINATION ${CKPT_DOC_DIR})

if(CKPT_BUILD_GUI)
    ckpt_configure_gzip(${CKPT_INSTALLER_DIR}/man/checkpoint-studio.1.in ${CKPT_INSTALLER_BINARY_DIR}/checkpoint-studio.1)
    configure_file(${CKPT_INSTALLER_DIR}/linux/${CKPT_APPSTREAM_ID}.metainfo.xml.in
                   ${CKPT_INSTALLER_BINARY_DIR}/${CKPT_APPSTREAM_ID}.metainfo.xml @ONLY)

    install(FILES ${CKPT_INSTALLER_BINARY_DIR}/checkpoint-studio.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
    # The desktop file keeps the name the program gives itself (setDesktopFileName), so that
    # window managers match windows to the menu entry and its icon.
    install(FILES ${CKPT_INSTALLER_DIR}/linux/checkpoint-studio.desktop DESTINATION ${CMAKE_INSTALL_DATADIR}/applications)
    install(FILES ${CKPT_INSTALLER_BINARY_DIR}/${CKPT_APPSTREAM_ID}.metainfo.xml DESTINATION ${CMAKE_INSTALL_DATADIR}/metainfo)
    install(FILES ${CKPT_INSTALLER_DIR}/linux/checkpoint-studio.xml DESTINATION ${CMAKE_INSTALL_DATADIR}/mime/packages)
    install(FILES ${CKPT_INSTALLER_DIR}/icons/checkpoint-studio.svg
            DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/scalable/apps)
    # File icons are looked up by the MIME type's name (application/x-foo -> application-x-foo).
    foreach(mime_icon application-x-pytorch-checkpoint application-x-safetensors)
        install(FILES ${CKPT_INSTALLER_DIR}/icons/application-x-pytorch-checkpoint.svg
                DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/scalable/mimetypes RENAME ${mime_icon}.svg)
    endforeach()
endif()

# No maintainer scripts of ours: Debian's desktop-file-utils, shared-mime-info, hicolor-icon-theme
# and man-db refresh their caches through dpkg file triggers on the folders above. (CPack adds
# postinst/postrm scripts calling ldconfig by itself, for any library under /usr/lib.)

# --- CPack ------------------------------------------------------------------------------------
set(CPACK_PACKAGE_NAME checkpoint-studio)
set(CPACK_PACKAGE_VENDOR "Checkpoint Studio")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_HOMEPAGE_URL ${CKPT_HOMEPAGE_URL})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "inspect PyTorch checkpoints without Python")
if(CKPT_BUILD_GUI)
    set(_ckpt_package_contents "This package holds the Qt application (checkpoint-studio), its command-line
twin (ckpt, with JSON output and a security scan) and the LibTorch module
that computes tensor statistics on demand.")
else()
    set(_ckpt_package_contents "This package holds the command-line program (ckpt, with JSON output and a
security scan) and the LibTorch module that computes tensor statistics on
demand; it was built without the Qt application.")
endif()
# No line of the long description may start with a dot (Debian reserves those).
set(CPACK_PACKAGE_DESCRIPTION
    "Checkpoint Studio opens PyTorch checkpoint files (pth, pt, ckpt, bin and
safetensors files) and shows everything inside them: format, kind, the state
dict with every tensor's name, dtype, shape and device, optimizer state and
metadata. No Python is needed and nothing a pickle carries is ever executed.

${_ckpt_package_contents}")
set(CPACK_PACKAGE_FILE_NAME "checkpoint-studio-${PROJECT_VERSION}-linux-${CMAKE_SYSTEM_PROCESSOR}")
set(CPACK_PACKAGE_INSTALL_DIRECTORY "Checkpoint Studio")
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    set(CPACK_GENERATOR "DEB;TGZ")
else()
    # Windows and macOS packaging is not configured yet: see installer/README.md.
    set(CPACK_GENERATOR "TGZ")
    message(STATUS "installer: only a .tar.gz is configured on ${CMAKE_SYSTEM_NAME}; see installer/README.md")
endif()
# Builds are RelWithDebInfo: strip what goes into a package (lintian: unstripped-binary-or-object).
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_PACKAGE_FILE_NAME "checkpoint-studio-${PROJECT_VERSION}")
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/\\\\.cache/" "__pycache__")

# Debian. Dependencies are computed by dpkg-shlibdeps from the ELF files (Qt 6 and LibTorch come
# from Debian's shlibs/symbols files with their minimum versions); nothing is listed by hand except
# what no ELF file names.
set(CPACK_DEBIAN_PACKAGE_NAME checkpoint-studio)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${CKPT_DEBIAN_REVISION})
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The compute module lives in a private folder; no program links it (it is dlopen'ed), but any
# ELF file that did would be resolved there rather than reported as an unknown library.
# dpkg-shlibdeps runs in the staging root, so the folder is relative to it.
set(_ckpt_packaging_prefix /usr)
string(REGEX REPLACE "^/" "" _ckpt_private_dir "${_ckpt_packaging_prefix}/${CKPT_MODULE_INSTALL_DIR}")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${_ckpt_private_dir})
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
if(CKPT_BUILD_GUI)
    # Qt loads its platform plugins (xcb, wayland) with dlopen: dpkg-shlibdeps cannot see them.
    # libqt6gui6 recommends the same package; saying it here keeps it when recommends are off.
    set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "qt6-qpa-plugins")
endif()

include(CPack)
