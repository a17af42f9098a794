#!/usr/bin/env bash
# Stop the one-node SLURM cluster started by start_cluster.sh DIR.
dir=$(realpath "$1")
for daemon in slurmd slurmctld; do
  [ -f "$dir/$daemon.pid" ] && kill "$(cat "$dir/$daemon.pid")" 2>/dev/null
done
grep -qs "written by stratomics" /etc/slurm/slurm.conf && rm -f /etc/slurm/slurm.conf
true
