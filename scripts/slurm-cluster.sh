#!/usr/bin/env bash
# A one-node Slurm cluster on loopback for the tests (../shared/docs/SLURM.md has the facts it
# follows): munged with its own key and socket, slurmctld and slurmd in the foreground under
# setsid, every state, spool, log and pid file under DIR. Needs root (Slurm's daemons switch users).
#
# Usage: scripts/slurm-cluster.sh start DIR   prints the SLURM_CONF to export, once the node is idle
#        scripts/slurm-cluster.sh stop DIR    cancels every job, waits for them, stops the daemons
# Exit 77 when a cluster cannot be started here (not root, or the packages are missing).
set -euo pipefail
cmd=${1:?usage: slurm-cluster.sh start|stop DIR} dir=${2:?usage: slurm-cluster.sh start|stop DIR}
conf=$dir/slurm.conf
export SLURM_CONF=$conf  # never let a client look the cluster up in DNS

stop() {
  [ -f "$conf" ] || return 0
  if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    scancel --full --quiet --user=root 2>/dev/null || true
    for _ in $(seq 1 100); do  # job steps outlive the daemons: let them end first
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  for name in slurmd slurmctld munged; do
    if [ -f "$dir/$name.pid" ]; then
      pid=$(cat "$dir/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "slurm-cluster: unknown command '$cmd' (start or stop)" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then echo "slurm-cluster: Slurm's daemons need root" >&2; exit 77; fi
for tool in munged slurmctld slurmd sbatch; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
    echo "slurm-cluster: $tool is missing (scripts/install-deps.sh test installs Slurm)" >&2; exit 77; }
done

mkdir -p "$dir"/{munge,munge-run,spool,state}
chmod 0755 "$dir"  # munged runs as munge and must reach its folders
chown munge:munge "$dir/munge" "$dir/munge-run"
chmod 0700 "$dir/munge"
key=$dir/munge/munge.key
[ -f "$key" ] || { dd if=/dev/urandom bs=1024 count=1 of="$key" status=none; chown munge:munge "$key"; chmod 0600 "$key"; }
socket=$dir/munge-run/munge.socket
runuser -u munge -- /usr/sbin/munged --socket="$socket" --key-file="$key" --pid-file="$dir/munge-run/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
for _ in $(seq 1 50); do [ -f "$dir/munge-run/munged.pid" ] && break; sleep 0.1; done
if [ ! -f "$dir/munge-run/munged.pid" ]; then
  echo "slurm-cluster: munged did not start; see $dir/munge/munged.log" >&2
  exit 1
fi
cp "$dir/munge-run/munged.pid" "$dir/munged.pid"

node=$(/usr/sbin/slurmd -C | head -1 | sed 's/NodeName=[^ ]*/NodeName=localhost NodeAddr=127.0.0.1/; s/ *UpTime=.*//')
cat > "$conf" <<CONF
ClusterName=upres-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=3600
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=2,bf_interval=2
KillWait=5
MailProg=/bin/true
$node
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
setsid /usr/sbin/slurmctld -D -c -f "$conf" >/dev/null 2>&1 < /dev/null &
echo $! > "$dir/slurmctld.pid"
setsid /usr/sbin/slurmd -D -N localhost -f "$conf" >/dev/null 2>&1 < /dev/null &
echo $! > "$dir/slurmd.pid"
for _ in $(seq 1 200); do
  if scontrol ping 2>/dev/null | grep -q UP && [ "$(sinfo -h -n localhost -o %T 2>/dev/null)" = idle ]; then
    echo "$conf"
    exit 0
  fi
  sleep 0.1
done
echo "slurm-cluster: the node did not become idle; see $dir/slurmctld.log and $dir/slurmd.log" >&2
stop
exit 1
