#!/usr/bin/env bash
# The Debian package: CPack builds the .deb from the build directory under
# test; it holds the binaries, both units, the sysusers entry, /etc/sova/
# sova.conf as a conffile, the man pages and the maintainer scripts; dpkg
# installs it into a scratch root (the postinst creates the user sova
# there), sova-supernode --version runs from the installed path, the
# supernode service can be enabled, an edited conffile survives a
# reinstall, and purge leaves nothing behind. The libraries it depends on
# are installed on this machine.
source "$(dirname "$0")/lib.sh"

for tool in cpack dpkg dpkg-deb dpkg-shlibdeps systemctl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/sova-dev deps installs it)"
done

cpack --config "$SOVA_BIN/CPackConfig.cmake" -B "$WORK/pkg" >"$WORK/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -20 "$WORK/cpack.log")"
debs=("$WORK"/pkg/sova_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "cpack made no single sova_*.deb: ${debs[*]}"
DEB=${debs[0]}
version=$(dpkg-deb -f "$DEB" Version)
"$SN_BIN" --version | grep -q "^sova-supernode $version " || fail "package version $version is not the binary's"
contents=$(dpkg-deb -c "$DEB" | awk '{ print $6 }')
for f in ./usr/sbin/sova-supernode ./usr/bin/sova-peer ./usr/bin/sova-federation \
  ./usr/lib/systemd/system/sova-supernode.service ./usr/lib/systemd/user/sova-peer.service \
  ./usr/lib/sysusers.d/sova.conf ./etc/sova/sova.conf ./usr/share/man/man8/sova-supernode.8 \
  ./usr/share/man/man1/sova-peer.1 ./usr/share/man/man5/sova.conf.5 ./usr/share/doc/sova/OPERATIONS.md \
  ./usr/share/bash-completion/completions/sova-peer ./usr/share/bash-completion/completions/sova-supernode; do
  grep -qx -- "$f" <<<"$contents" || fail "the package lacks $f"
done
dpkg-deb -I "$DEB" conffiles | grep -qx /etc/sova/sova.conf || fail "/etc/sova/sova.conf is not a conffile"
for s in postinst prerm postrm; do
  dpkg-deb -I "$DEB" "$s" | head -1 | grep -q '^#!/bin/sh' || fail "no $s script"
done
ok "cpack builds $(basename "$DEB"): binaries, units, sysusers entry, conffile, man pages, bash completion, maintainer scripts"

# Every dependency dpkg-shlibdeps found is installed here, at the version asked.
deps=$(dpkg-deb -f "$DEB" Depends)
[ -n "$deps" ] || fail "the package declares no dependencies"
IFS=',' read -r -a dep_list <<<"$deps"
for dep in "${dep_list[@]}"; do
  dep=${dep# }
  name=${dep%% *}
  have=$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null) || fail "dependency $name is not installed"
  if [[ $dep =~ \(([<>=]+)\ (.+)\) ]]; then
    op=${BASH_REMATCH[1]}
    case $op in '>=') op=ge ;; '<=') op=le ;; '>>') op=gt ;; '<<') op=lt ;; '=') op=eq ;; esac
    dpkg --compare-versions "$have" "$op" "${BASH_REMATCH[2]}" || fail "$name $have does not satisfy $dep"
  fi
done
grep -q libevent-extra <<<"$deps" && grep -q libsystemd0 <<<"$deps" || fail "Depends: misses libraries: $deps"
ok "Depends: names the shared libraries (${#dep_list[@]} packages), each installed here"

# Install into a scratch root: maintainer scripts run outside a chroot with
# DPKG_ROOT set, as dpkg does for --root installs.
R=$WORK/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
: >"$R/var/lib/dpkg/status"
dpkg_root() {
  dpkg --root="$R" --log=/dev/null --force-script-chrootless --force-depends --force-not-root \
    --force-confold "$@" >>"$WORK/dpkg.log" 2>&1 || fail "dpkg $*: $(tail -10 "$WORK/dpkg.log")"
}
dpkg_root -i "$DEB"
dpkg --root="$R" -s sova 2>/dev/null | grep -qx "Status: install ok installed" || fail "sova is not installed"
grep -q '^sova:x:[0-9]*:[0-9]*:Sova supernode:/var/lib/sova-supernode:' "$R/etc/passwd" ||
  fail "the postinst did not create the user sova: $(cat "$R/etc/passwd" 2>/dev/null)"
"$R/usr/sbin/sova-supernode" --version | grep -q "^sova-supernode $version " ||
  fail "the installed sova-supernode --version"
"$R/usr/bin/sova-peer" --version | grep -q "^sova-peer $version " || fail "the installed sova-peer --version"
"$R/usr/bin/sova-federation" init "$WORK/fed" >/dev/null || fail "the installed sova-federation"
# The installed completion is the installed binary's own, and offers its commands.
"$R/usr/bin/sova-peer" completion bash | cmp -s - "$R/usr/share/bash-completion/completions/sova-peer" ||
  fail "the installed completion of sova-peer is not what the installed sova-peer writes"
offered=$(bash -c 'source "$1"; COMP_WORDS=(sova-peer j); COMP_CWORD=1; _sova_peer; echo "${COMPREPLY[*]}"' \
  _ "$R/usr/share/bash-completion/completions/sova-peer")
[ "$offered" = join ] || fail "the installed completion offers '$offered' for 'sova-peer j'"
ok "dpkg installs it into a scratch root; the postinst creates user sova; the installed sova-supernode --version runs; its bash completion works"

systemctl --root="$R" enable sova-supernode.service >"$WORK/enable.log" 2>&1 ||
  fail "systemctl enable: $(cat "$WORK/enable.log")"
[ -L "$R/etc/systemd/system/multi-user.target.wants/sova-supernode.service" ] ||
  fail "enabling did not link the unit into multi-user.target.wants"
[ "$(systemctl --root="$R" is-enabled sova-supernode.service)" = enabled ] || fail "not enabled"
systemctl --root="$R" disable sova-supernode.service >/dev/null 2>&1
ok "the installed supernode service can be enabled (systemctl --root enable)"

echo "# edited by the operator" >>"$R/etc/sova/sova.conf"
dpkg_root -i "$DEB"
grep -q "edited by the operator" "$R/etc/sova/sova.conf" || fail "reinstalling replaced the edited conffile"
ok "reinstalling keeps an edited /etc/sova/sova.conf"

mkdir -p "$R/var/lib/sova-supernode"
dpkg_root -P sova
for f in usr/sbin/sova-supernode usr/lib/systemd/system/sova-supernode.service etc/sova/sova.conf \
  var/lib/sova-supernode; do
  [ ! -e "$R/$f" ] || fail "purge left /$f"
done
ok "purge removes the files, the conffile and the state directory"
done_ok
