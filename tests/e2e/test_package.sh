#!/usr/bin/env bash
# The Debian package: CPack builds the .deb from the build directory under
# test; it holds the binaries, both units, the sysusers entry, /etc/sova/
# sova.conf as a conffile, the gzipped man pages, copyright, changelog and
# the maintainer scripts; its binaries are stripped and their debug info is
# in sova-dbgsym (found by build ID); lintian (Debian's) reports no error
# and no warning that the package's overrides file does not justify. dpkg
# installs it into a scratch root (the postinst creates the user sova
# there), sova-supernode --version runs from the installed path, the
# services can be enabled, an edited conffile survives a reinstall, remove
# keeps /etc/sova with the supernode's keys, and purge leaves nothing of
# the package behind but the user sova. The libraries it depends on are
# installed on this machine. The ASan build packages its own binaries and
# they pass the same checks (lintian's hardening tags are info, not
# warnings).
source "$(dirname "$0")/lib.sh"

for tool in cpack dpkg dpkg-deb dpkg-shlibdeps dpkg-parsechangelog systemctl lintian file readelf; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/sova-dev deps installs it)"
done

cpack --config "$SOVA_BIN/CPackConfig.cmake" -B "$WORK/pkg" >"$WORK/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -20 "$WORK/cpack.log")"
debs=("$WORK"/pkg/sova_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "cpack made no single sova_*.deb: ${debs[*]}"
DEB=${debs[0]}
dbgs=("$WORK"/pkg/sova-dbgsym_*.ddeb)
[ ${#dbgs[@]} -eq 1 ] && [ -f "${dbgs[0]}" ] || fail "cpack made no single sova-dbgsym_*.ddeb: ${dbgs[*]}"
DBG=${dbgs[0]}
version=$(dpkg-deb -f "$DEB" Version)
"$SN_BIN" --version | grep -q "^sova-supernode $version " || fail "package version $version is not the binary's"
contents=$(dpkg-deb -c "$DEB" | awk '{ print $6 }')
for f in ./usr/sbin/sova-supernode ./usr/bin/sova-peer ./usr/bin/sova-federation \
  ./usr/lib/systemd/system/sova-supernode.service ./usr/lib/systemd/user/sova-peer.service \
  ./usr/lib/sysusers.d/sova.conf ./etc/sova/sova.conf ./usr/share/man/man8/sova-supernode.8.gz \
  ./usr/share/man/man8/sova-federation.8.gz ./usr/share/man/man1/sova-peer.1.gz \
  ./usr/share/man/man5/sova.conf.5.gz ./usr/share/doc/sova/OPERATIONS.md ./usr/share/doc/sova/copyright \
  ./usr/share/doc/sova/changelog.gz ./usr/share/lintian/overrides/sova \
  ./usr/share/bash-completion/completions/sova-peer ./usr/share/bash-completion/completions/sova-supernode; do
  grep -qx -- "$f" <<<"$contents" || fail "the package lacks $f"
done
! grep -E '^\./usr/share/man/.*[0-9]$' <<<"$contents" || fail "the package has man pages not gzipped"
dpkg-deb -I "$DEB" conffiles | grep -qx /etc/sova/sova.conf || fail "/etc/sova/sova.conf is not a conffile"
for s in postinst prerm postrm; do
  dpkg-deb -I "$DEB" "$s" | head -1 | grep -q '^#!/bin/sh' || fail "no $s script"
done
ok "cpack builds $(basename "$DEB"): binaries, units, sysusers entry, conffile, man pages, bash completion, maintainer scripts"

X=$WORK/deb
D=$WORK/dbgsym
dpkg-deb -x "$DEB" "$X"
dpkg-deb -x "$DBG" "$D"
# gzip -9n: no file name and no time stamp in the header (the same page
# makes the same bytes): FLG (byte 3) and MTIME (bytes 4-7) are zero.
for gz in "$X"/usr/share/man/man*/*.gz "$X/usr/share/doc/sova/changelog.gz"; do
  gzip -t "$gz" || fail "${gz#"$X"} is not gzip"
  [ "$(od -An -tx1 -j3 -N5 "$gz" | tr -d ' ')" = 0000000000 ] ||
    fail "${gz#"$X"} carries a name or a time stamp (not gzip -n)"
done
gzip -dc "$X/usr/share/doc/sova/changelog.gz" >"$WORK/changelog"
[ "$(dpkg-parsechangelog -l "$WORK/changelog" -S Version)" = "$version" ] ||
  fail "changelog.gz's newest entry is $(dpkg-parsechangelog -l "$WORK/changelog" -S Version), the package $version"
dpkg-parsechangelog -l "$WORK/changelog" -S Maintainer | grep -Eq '^[^<]+ <[^@ ]+@[^> ]+>$' ||
  fail "changelog.gz has no maintainer line"
cr=$X/usr/share/doc/sova/copyright
head -1 "$cr" | grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' ||
  fail "copyright is not machine-readable (DEP-5): $(head -1 "$cr")"
grep -qx 'Files: \*' "$cr" && grep -q '^Copyright: ' "$cr" || fail "copyright has no Files: * paragraph"
lic=$(sed -n 's/^License: //p' "$cr" | sort -u)
[ "$(wc -l <<<"$lic")" -eq 1 ] && [ "$(grep -c "^License: $lic\$" "$cr")" -eq 2 ] ||
  fail "copyright: the license of Files: * has no stand-alone License: paragraph ($lic)"
ok "gzip -9n man pages and changelog.gz (version $version), a DEP-5 copyright (License: $lic)"

# Stripped binaries; their debug info is in sova-dbgsym under the build ID,
# and each binary's .gnu_debuglink names that file.
[ "$(dpkg-deb -f "$DBG" Depends)" = "sova (= $version)" ] || fail "sova-dbgsym Depends: $(dpkg-deb -f "$DBG" Depends)"
for b in usr/sbin/sova-supernode usr/bin/sova-peer; do
  file -b "$X/$b" | grep -q ', stripped' || fail "/$b is not stripped: $(file -b "$X/$b")"
  ! readelf -S "$X/$b" | grep -q '\.debug_' || fail "/$b has .debug_ sections"
  id=$(readelf -n "$X/$b" | sed -n 's/^ *Build ID: //p')
  [ ${#id} -eq 40 ] || fail "/$b has no build ID"
  dbg=usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
  [ -f "$D/$dbg" ] || fail "sova-dbgsym has no /$dbg for /$b"
  [ "$(readelf -n "$D/$dbg" 2>/dev/null | sed -n 's/^ *Build ID: //p')" = "$id" ] || fail "/$dbg is not /$b's build"
  readelf -S "$D/$dbg" 2>/dev/null | grep -q '\.debug_info' || fail "/$dbg holds no .debug_info"
  [ "$(readelf -p .gnu_debuglink "$X/$b" 2>/dev/null | sed -n 's/^ *\[ *0\] *//p')" = "${id:2}.debug" ] ||
    fail "/$b's .gnu_debuglink does not name ${id:2}.debug"
done
ok "the binaries are stripped; sova-dbgsym ($(basename "$DBG")) holds their debug info by build ID"

# lintian, Debian's: no error, no warning but those the package overrides,
# each override with its reason on the comment line above it.
lintian --display-info --show-overrides "$DEB" "$DBG" >"$WORK/lintian.log" 2>&1 || true
echo "lintian $(lintian --print-version) on $(basename "$DEB") $(basename "$DBG"):"
grep -v '^running with root privileges' "$WORK/lintian.log" | sed 's/^/  /'
! grep -E '^[EW]: ' "$WORK/lintian.log" || fail "lintian reports errors or warnings (above)"
! grep -E '^[A-Z]: .*(unused-override|mismatched-override)' "$WORK/lintian.log" || fail "lintian: stale overrides"
lintian --fail-on error,warning "$DEB" "$DBG" >/dev/null 2>&1 || fail "lintian --fail-on error,warning fails"
prev=
while IFS= read -r line; do
  case $line in
    '' | '#'*) ;;
    *) [[ $prev == '#'* ]] || fail "lintian override without a reason above it: $line" ;;
  esac
  prev=$line
done <"$X/usr/share/lintian/overrides/sova"
ok "lintian: no errors, no warnings not overridden ($(grep -c '^O: ' "$WORK/lintian.log" || true) overridden, each with its reason)"

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
# the peer's user unit for every user (and it stays enabled: purge must
# remove both links)
systemctl --root="$R" --global enable sova-peer.service >"$WORK/enable.log" 2>&1 ||
  fail "systemctl --global enable: $(cat "$WORK/enable.log")"
[ -L "$R/etc/systemd/user/default.target.wants/sova-peer.service" ] ||
  fail "enabling did not link the user unit into default.target.wants"
ok "the installed services can be enabled (systemctl --root enable; --global for the peer's user unit)"

echo "# edited by the operator" >>"$R/etc/sova/sova.conf"
dpkg_root -i "$DEB"
grep -q "edited by the operator" "$R/etc/sova/sova.conf" || fail "reinstalling replaced the edited conffile"
ok "reinstalling keeps an edited /etc/sova/sova.conf"

# The supernode's certificate and key, where docs/OPERATIONS.md (section 3)
# puts them, and its state as systemd's StateDirectory= makes it.
"$R/usr/bin/sova-federation" issue "$WORK/fed" sn1 >/dev/null || fail "sova-federation issue"
install -m 0644 "$WORK/fed/root.crt" "$WORK/fed/sn1.crt" "$R/etc/sova/"
install -m 0600 "$WORK/fed/sn1.key" "$R/etc/sova/"
mkdir -p "$R/var/lib/sova-supernode"
echo state >"$R/var/lib/sova-supernode/x"

dpkg_root -r sova
for f in usr/sbin/sova-supernode usr/bin/sova-peer usr/lib/systemd/system/sova-supernode.service; do
  [ ! -e "$R/$f" ] || fail "remove left /$f"
done
for f in etc/sova/sova.conf etc/sova/sn1.key etc/sova/sn1.crt etc/sova/root.crt var/lib/sova-supernode/x; do
  [ -e "$R/$f" ] || fail "remove took /$f (only purge may)"
done
grep -q "edited by the operator" "$R/etc/sova/sova.conf" || fail "remove changed the conffile"
[ -L "$R/etc/systemd/system/multi-user.target.wants/sova-supernode.service" ] ||
  fail "remove took the link that enables the service (a reinstall would find it disabled)"
ok "remove takes the programs, keeps /etc/sova (configuration, keys, certificates), the state and the enabled state"

dpkg_root -P sova
left=$(find "$R" -name '*sova*')
[ -z "$left" ] || fail "purge left: $left"
[ ! -e "$R/etc/sova" ] || fail "purge left /etc/sova: $(ls -A "$R/etc/sova")"
dangling=$(find "$R" -xtype l 2>/dev/null)
[ -z "$dangling" ] || fail "purge left dangling links: $dangling"
grep -q '^sova:x:' "$R/etc/passwd" || fail "purge removed the user sova (Debian keeps system users)"
dpkg --root="$R" -s sova >/dev/null 2>&1 && fail "dpkg still knows sova after purge"
ok "purge removes the files, the conffile, the keys and certificates, the state and the enabling links; the user sova stays"
done_ok
