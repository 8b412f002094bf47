#!/usr/bin/env bash
# test_partition.sh - a real network partition of the supernode federation
# (docs/FEDERATION.md, "Partitions"). Five supernodes are hosts on the bed's
# internet, each seeded with sn1 only. sn3's traffic is dropped by nftables
# inside its namespace for 30 s (natbed_partition: no reset, its sockets and
# process stay up), then healed:
#  - every other supernode declares sn3 dead, and none of them suspects any
#    of the other three while it happens;
#  - sn3, still running, suspects and then declares the four others dead
#    (its view and its log are printed);
#  - after the heal every supernode sees the four others alive again within
#    a bound, and stays so (no supernode stays, or falls back, wrongly dead).
# Prints the detection times and the convergence time after the heal.
source "$SOVA_SRC/tests/e2e/lib.sh"
source "$SOVA_SRC/tests/natbed/lib.sh"
source "$SOVA_SRC/tests/natbed/overlay.sh"

CUT_S=${PARTITION_S:-30}       # how long sn3 is cut off
DETECT_BOUND_S=15               # the others declare it dead within this
CONVERGE_BOUND_S=30             # all alive everywhere within this after the heal

natbed_init
declare -A IP
for i in 1 2 3 4 5; do
  IP[$i]=20.0.0.$((9 + i))
  natbed_host "sn$i" "${IP[$i]}"
done
natbed_check_isolation
nb_federation 5
declare -A ID
for i in 1 2 3 4 5; do
  ID[$i]=$("$FED" id "$WORK/fed/sn$i.crt")
  if [ "$i" -eq 1 ]; then nb_supernode sn1 sn1 "${IP[1]}"
  else nb_supernode "sn$i" "sn$i" "${IP[$i]}" --peers "${IP[1]}:7070"; fi
done

# views I: "SHORTID=state ..." of supernode I's members, sorted.
views() {
  nb_sn_status "sn$1" 2>/dev/null | python3 -c '
import json, sys
print(" ".join(sorted("%s=%s" % (m["id"][:8], m["state"]) for m in json.load(sys.stdin)["members"])))'
}
# count I STATE [ID]: how many members supernode I holds in STATE (only ID, if given).
count() {
  nb_sn_status "sn$1" 2>/dev/null | python3 -c '
import json, sys
want, only = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
print(sum(1 for m in json.load(sys.stdin)["members"]
          if m["state"] == want and (not only or m["id"] == only)))' "$2" ${3:+"$3"} || echo -1
}
# wait_all SECONDS DESCRIPTION CHECK: until CHECK I succeeds for every I in $NODES.
wait_all() {
  local secs=$1 what=$2 check=$3 deadline=$((SECONDS + $1)) i left
  while :; do
    left=
    for i in $NODES; do "$check" "$i" || left="$left sn$i"; done
    [ -z "$left" ] && return 0
    [ $SECONDS -lt $deadline ] || {
      for i in $NODES; do echo "  sn$i: $(views "$i")"; done
      fail "$what within ${secs} s: not on$left"
    }
    sleep 0.2
  done
}
all_alive() { [ "$(count "$1" alive)" = 4 ]; }
sn3_dead() { [ "$(count "$1" dead "${ID[3]}")" = 1 ]; }
others_fine() { [ "$(count "$1" alive)" = 3 ]; } # the three others, sn3 aside
cut_off() { [ "$(count "$1" dead)" = 4 ]; }

NODES="1 2 3 4 5"
wait_all 30 "all see the 4 others alive" all_alive
ok "5 supernodes on the bed's internet, seeded with sn1, all see the 4 others alive"

# log_time first|last LOG REGEX T0: milliseconds since the epoch of the
# first or last line of LOG matching REGEX logged at or after T0 (ms; log
# lines start with a UTC timestamp in ms); fails when there is none.
log_time() {
  python3 - "$@" <<'PY'
import datetime, re, sys
which, path, regex, t0 = sys.argv[1], sys.argv[2], re.compile(sys.argv[3]), float(sys.argv[4])
found = []
for line in open(path, errors="replace"):
    if not regex.search(line):
        continue
    stamp = line.split(" ", 1)[0].rstrip("Z")
    try:
        t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f")
    except ValueError:
        continue
    t = round(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    if t >= t0:
        found.append(t)
if not found:
    sys.exit(1)
print(found[0] if which == "first" else found[-1])
PY
}
first_after() { log_time first "$@"; }
last_after() { log_time last "$@"; }
now() { echo $(($(date +%s%N) / 1000000)); } # ms
secs() { printf '%d.%03d' $((($1 - $2) / 1000)) $((($1 - $2) % 1000)); } # A - B (ms) in s

# ---- the partition ----------------------------------------------------------------
t_cut=$(now)
natbed_partition sn3
# sn3's own control socket still answers (it is a UNIX socket, not the network).
NODES="1 2 4 5"
wait_all "$DETECT_BOUND_S" "sn3 declared dead" sn3_dead
for i in 1 2 4 5; do others_fine "$i" || fail "sn$i lost one of the other three during the cut: $(views "$i")"; done
detect=
for i in 1 2 4 5; do
  t=$(first_after "$WORK/sn$i.log" "member ${ID[3]:0:8}: [a-z]+ -> dead" "$t_cut") ||
    fail "sn$i's log does not say sn3 became dead"
  detect="$detect sn$i +$(secs "$t" "$t_cut")s"
done
ok "sn3 cut off: every other supernode declares it dead ($detect), and still sees the three others alive"

NODES=3
wait_all "$((CUT_S - 2))" "sn3 declares the four others dead" cut_off
echo "# sn3, cut off, $(secs "$(now)" "$t_cut") s in: $(views 3)"
echo "# sn3's log during the cut:"
grep -E "member [a-z0-9]+: " "$WORK/sn3.log" | tail -n 8 | sed 's/^/#   /'
t=$(last_after "$WORK/sn3.log" "member [a-z0-9]+: suspect -> dead" "$t_cut")
ok "sn3, still running, suspects and then declares the four others dead (the last at +$(secs "$t" "$t_cut") s)"

# The cut lasts CUT_S seconds in all (a scenario length, not a wait for a condition).
rest=$((CUT_S * 1000 - ($(now) - t_cut)))
[ $rest -le 0 ] || sleep "$(secs "$rest" 0)"
t_heal=$(now)
natbed_heal sn3
echo "# healed after $(secs "$t_heal" "$t_cut") s"

# ---- convergence ------------------------------------------------------------------
NODES="1 2 3 4 5"
wait_all "$CONVERGE_BOUND_S" "all alive everywhere after the heal" all_alive
t_seen=$(now)
# The precise time: the last change to alive logged by any supernode after the heal.
t_last=$t_heal
for i in 1 2 3 4 5; do
  t=$(last_after "$WORK/sn$i.log" "member [a-z0-9]+: [a-z]+ -> alive" "$t_heal") || continue
  [ "$t" -le "$t_last" ] || t_last=$t
done
echo "# converged: all 5 see the 4 others alive $(secs "$t_last" "$t_heal") s after the heal (last change logged; seen by polling at +$(secs "$t_seen" "$t_heal") s)"
ok "healed: every supernode sees the four others alive again within ${CONVERGE_BOUND_S} s ($(secs "$t_last" "$t_heal") s)"

# Stays converged: 10 s later nobody has declared anyone dead or suspect again.
t_conv=$(now)
deadline=$((SECONDS + 10))
while [ $SECONDS -lt $deadline ]; do
  for i in 1 2 3 4 5; do all_alive "$i" || fail "sn$i fell back after converging: $(views "$i")"; done
  sleep 0.5
done
for i in 1 2 3 4 5; do
  if t=$(first_after "$WORK/sn$i.log" "member [a-z0-9]+: [a-z]+ -> (dead|suspect)" "$t_conv"); then
    fail "sn$i logged a new suspicion or death at +$(secs "$t" "$t_conv") s after converging"
  fi
done
ok "10 s later all five still see all alive, and no supernode logged a new suspicion or death"

for i in 5 4 3 2 1; do nb_stop "sn$i"; done
done_ok
