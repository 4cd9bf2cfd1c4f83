#!/usr/bin/env bash
# A two-node Slurm cluster on this machine, for tests and for trying `wtpipe submit` by hand.
#
#   tools/slurm_local.sh start|stop|status
#
# Nodes n1 and n2 both live on 127.0.0.1 (distinct slurmd ports), partition "debug", no
# accounting. Needs root and Debian's slurmctld slurmd slurm-client munge. State, logs and pid
# files live under $WTPIPE_SLURM_DIR (default /tmp/wtpipe-slurm); outside it, only what the
# daemons insist on: /etc/slurm/slurm.conf (a symlink to the state dir's, for the client
# commands), the munge key, and "127.0.0.1 n1 n2" in /etc/hosts. Idempotent; stop ends only
# the daemons this script started (by their pid files).
set -euo pipefail

DIR="${WTPIPE_SLURM_DIR:-/tmp/wtpipe-slurm}"
CONF="$DIR/slurm.conf"

die() { echo "slurm_local: $*" >&2; exit 1; }

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
  local host cpus
  host="$(hostname -s)"
  cpus="$(nproc)"
  mkdir -p "$DIR/state" "$DIR/spool-n1" "$DIR/spool-n2"
  cat > "$CONF" <<CONF
ClusterName=wtpipe
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=6817
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool-%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
KillWait=30
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
NodeName=n1 NodeAddr=127.0.0.1 NodeHostname=$host Port=6818 CPUs=$cpus RealMemory=16000 State=UNKNOWN
NodeName=n2 NodeAddr=127.0.0.1 NodeHostname=$host Port=6819 CPUs=$cpus RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE OverSubscribe=YES State=UP
CONF
}

start_munge() {
  if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if ! munge -n >/dev/null 2>&1; then
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    # munged forks into the background: its own pid file names the daemon once it answers
    for _ in $(seq 1 100); do munge -n >/dev/null 2>&1 && [[ -s /run/munge/munged.pid ]] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$DIR/munged.pid"
  fi
}

start() {
  [[ $EUID -eq 0 ]] || die "needs root (it starts daemons and writes /etc/slurm, /etc/hosts)"
  command -v slurmctld >/dev/null || die "Slurm is not installed: apt-get install slurmctld slurmd slurm-client munge"
  mkdir -p "$DIR" /etc/slurm
  grep -qE '^127\.0\.0\.1[[:space:]].*\bn1\b' /etc/hosts || echo "127.0.0.1 n1 n2" >> /etc/hosts
  write_conf
  if [[ -e /etc/slurm/slurm.conf && "$(readlink -f /etc/slurm/slurm.conf)" != "$(readlink -f "$CONF")" ]]; then
    die "/etc/slurm/slurm.conf exists and is not ours; not touching a real cluster's config"
  fi
  ln -sfn "$CONF" /etc/slurm/slurm.conf
  start_munge
  alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
  for node in n1 n2; do
    alive "$DIR/slurmd-$node.pid" || slurmd -f "$CONF" -N "$node"
  done
  for _ in $(seq 1 60); do
    if [[ "$(sinfo -h -N -o '%T' 2>/dev/null | grep -cE '^(idle|mixed|allocated)')" -ge 2 ]]; then
      status
      return 0
    fi
    for node in $(sinfo -h -N -t down,drain -o '%N' 2>/dev/null); do  # left down by an earlier stop
      scontrol update nodename="$node" state=resume 2>/dev/null || true
    done
    sleep 0.5
  done
  status || true
  die "the nodes did not come up; see $DIR/*.log"
}

stop() {
  local pid
  for name in slurmd-n1 slurmd-n2 slurmctld munged; do
    if alive "$DIR/$name.pid"; then
      pid="$(cat "$DIR/$name.pid")"
      kill "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done  # gone before the next
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/$name.pid"
  done
  echo "stopped (state kept in $DIR)"
}

status() {
  sinfo -N -o '%N %T %c %P' 2>/dev/null || { echo "not running"; return 1; }
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
