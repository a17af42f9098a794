#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (Debian's slurm-wlm and munge), for the SLURM test.
#   tests/slurm/start_cluster.sh DIR     -> writes DIR/slurm.conf and /etc/slurm/slurm.conf
# Needs root (munged and slurmd run as root here). Stop it with: tests/slurm/stop_cluster.sh DIR
set -euo pipefail
dir=$(realpath "$1")
mkdir -p "$dir/state" "$dir/spool"
host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
cat > "$dir/slurm.conf" <<CONF
# written by stratomics tests/slurm/start_cluster.sh
ClusterName=stratomics-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
# Job steps (srun inside sbatch) read the default location; use it unless a real cluster owns it.
if [ ! -e /etc/slurm/slurm.conf ] || grep -q "written by stratomics" /etc/slurm/slurm.conf; then
  mkdir -p /etc/slurm && cp "$dir/slurm.conf" /etc/slurm/slurm.conf
else
  echo "/etc/slurm/slurm.conf belongs to another cluster; not starting a test cluster here" >&2
  exit 1
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged --force 2>/dev/null || /usr/sbin/munged --force
slurmctld -f "$dir/slurm.conf"
slurmd -f "$dir/slurm.conf"
for _ in $(seq 30); do
  if SLURM_CONF="$dir/slurm.conf" sinfo -h -o %T 2>/dev/null | grep -qx idle; then exit 0; fi
  sleep 1
done
echo "SLURM did not come up; see $dir/slurmctld.log and $dir/slurmd.log" >&2
exit 1
