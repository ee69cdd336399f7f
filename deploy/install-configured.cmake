# Run by `cmake --install` (see deploy/CMakeLists.txt): writes the files that name install folders
# -- emotiond.conf, emotiond.service, emotiond.socket, emotiond-setup-detectors -- for the prefix of this install,
# which `cmake --install --prefix P` may have changed since configuring. The folders follow
# GNUInstallDirs' rules, as emotiond's own defaults do (daemon/paths.h): SYSCONFDIR and
# LOCALSTATEDIR are /etc and /var for the prefixes / and /usr, /etc/opt/P and /var/opt/P for /opt/P.
#
# Set by the install(CODE) before it: EMO_SRC (deploy/), EMO_OUT (a scratch folder), EMO_DIRS_*
# (GNUInstallDirs' folders as configured, relative or absolute), EMO_UNITDIR, EMO_SCRIPT.

function(emo_full_dir out dir system)
  set(prefix "${CMAKE_INSTALL_PREFIX}")
  if(IS_ABSOLUTE "${dir}")
    set(full "${dir}")
  elseif(system AND (prefix STREQUAL "/" OR prefix STREQUAL "/usr"))
    set(full "/${dir}")
  elseif(system AND prefix MATCHES "^/opt/")
    set(full "/${dir}${prefix}")
  elseif(prefix STREQUAL "/")
    set(full "/${dir}")
  else()
    set(full "${prefix}/${dir}")
  endif()
  set(${out} "${full}" PARENT_SCOPE)
endfunction()

emo_full_dir(CMAKE_INSTALL_FULL_SBINDIR "${EMO_DIRS_SBINDIR}" FALSE)
emo_full_dir(CMAKE_INSTALL_FULL_DATADIR "${EMO_DIRS_DATADIR}" FALSE)
emo_full_dir(CMAKE_INSTALL_FULL_DOCDIR "${EMO_DIRS_DOCDIR}" FALSE)
emo_full_dir(CMAKE_INSTALL_FULL_SYSCONFDIR "${EMO_DIRS_SYSCONFDIR}" TRUE)
emo_full_dir(CMAKE_INSTALL_FULL_LOCALSTATEDIR "${EMO_DIRS_LOCALSTATEDIR}" TRUE)
emo_full_dir(unitdir "${EMO_UNITDIR}" FALSE)
set(EMO_DATADIR "${CMAKE_INSTALL_FULL_DATADIR}/emotiond")
set(EMO_DETECTOR_DIR "${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/lib/emotiond/detectors")

configure_file("${EMO_SRC}/emotiond.conf.in" "${EMO_OUT}/emotiond.conf" @ONLY)
configure_file("${EMO_SRC}/emotiond.service.in" "${EMO_OUT}/emotiond.service" @ONLY)
configure_file("${EMO_SRC}/emotiond.socket.in" "${EMO_OUT}/emotiond.socket" @ONLY)
configure_file("${EMO_SCRIPT}" "${EMO_OUT}/emotiond-setup-detectors" @ONLY)
file(INSTALL DESTINATION "${CMAKE_INSTALL_FULL_SYSCONFDIR}/emotiond" TYPE FILE FILES "${EMO_OUT}/emotiond.conf")
# The folder of the CURVE clients allowed on tcp:// (clients_dir in emotiond.conf), empty: an
# operator who turns CURVE on copies certificates into it rather than first finding it missing.
file(MAKE_DIRECTORY "${EMO_OUT}/clients.d")
file(INSTALL DESTINATION "${CMAKE_INSTALL_FULL_SYSCONFDIR}/emotiond" TYPE DIRECTORY FILES "${EMO_OUT}/clients.d")
file(INSTALL DESTINATION "${unitdir}" TYPE FILE FILES "${EMO_OUT}/emotiond.service" "${EMO_OUT}/emotiond.socket")
file(INSTALL DESTINATION "${CMAKE_INSTALL_FULL_SBINDIR}" TYPE PROGRAM FILES "${EMO_OUT}/emotiond-setup-detectors")
