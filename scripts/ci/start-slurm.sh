#!/usr/bin/env bash
# Start a single-node Slurm on this machine, bound to loopback, for the sweep's Slurm executor tests.
# Idempotent: reruns leave a running cluster alone (and restart only a daemon that died). Run as root.
#   scripts/ci/start-slurm.sh            # install (if needed), configure, start, wait until the node is idle
#   SLURM_CPUS=4 scripts/ci/start-slurm.sh   # advertise more CPUs than nproc (slurmd config_overrides)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" != 0 ]; then
  echo "start-slurm: must run as root (it writes /etc/slurm and starts munged, slurmctld, slurmd)" >&2
  exit 1
fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
fi

host=$(hostname -s)
cpus=${SLURM_CPUS:-$(nproc)}
# RealMemory: a little under MemTotal, in MB (slurmd drains a node that reports less than configured).
mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
conf_dir=/etc/slurm
conf=$conf_dir/slurm.conf
mkdir -p "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge /etc/munge

# munge: a key once; munged refuses keys and folders that others can read or write.
if [ ! -s /etc/munge/munge.key ]; then
  if command -v mungekey >/dev/null 2>&1; then mungekey --create --keyfile=/etc/munge/munge.key --force
  else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key

want=$(cat <<CONF
# Written by synthmix scripts/ci/start-slurm.sh: one node on loopback.
ClusterName=synthmix
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# No accounting daemon: the sweep reads squeue / scontrol and each task's own exit-status file.
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Keep finished jobs visible to scontrol for an hour (tests count submitted jobs there).
MinJobAge=3600
MaxJobCount=100000
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
KillWait=10
SlurmdParameters=config_overrides
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=main Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
)
changed=0
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
  printf '%s\n' "$want" > "$conf"
  changed=1
fi

running() { pgrep -x "$1" >/dev/null 2>&1; }
if ! running munged; then
  if id munge >/dev/null 2>&1; then su -s /bin/sh munge -c "munged --force" || munged --force
  else munged --force
  fi
fi
for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.2; done
munge -n | unmunge >/dev/null

if [ "$changed" = 1 ] && running slurmctld; then
  # A new config: restart both daemons so they agree on it.
  pkill -x slurmd || true
  pkill -x slurmctld || true
  for _ in $(seq 50); do running slurmctld || running slurmd || break; sleep 0.2; done
fi
running slurmctld || slurmctld
running slurmd || slurmd

# Wait for the node: idle (or mixed/allocated when jobs already run). A node left down/drained by an
# earlier start is resumed.
for i in $(seq 120); do
  state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1 || true)
  case "$state" in
    idle*|mixed*|allocated*|completing*) echo "start-slurm: node $host is $state ($cpus CPUs, ${mem} MB)"; exit 0 ;;
    down*|drain*|drained*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
  esac
  sleep 0.5
done
echo "start-slurm: node $host did not become idle (state: ${state:-unknown}); see /var/log/slurm/" >&2
sinfo >&2 || true
tail -20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
