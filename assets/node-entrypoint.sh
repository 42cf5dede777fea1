#!/bin/sh
# swarmlab node entrypoint: turn a container into a host that runs its own
# Docker engine, then start dockerd with the arguments given ("$@").
# POSIX sh on purpose: it also wraps images whose shell is busybox (docker:dind).
set -u

# Without --privileged the engine mounts /sys and the cgroup hierarchies
# read-only; dockerd needs them writable to create containers. A bind remount
# is the only kind the kernel accepts for the cgroup mounts.
mount -o remount,rw /sys 2>/dev/null || true
awk '$3 ~ /^cgroup/ { print $2 }' /proc/mounts | while read -r mp; do
  mount -o remount,bind,rw "$mp" 2>/dev/null || true
done

# cgroup v2 nesting, as the official dind script does: move every process out
# of the root group so that controllers can be enabled for children.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true
  sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers \
    >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
fi

# (awk rather than mountpoint(1): some busybox builds lack that applet)
if [ -d /sys/kernel/security ] &&
  ! awk '$2 == "/sys/kernel/security" { found = 1 } END { exit !found }' /proc/mounts; then
  mount -t securityfs none /sys/kernel/security 2>/dev/null || true
fi
# AppArmor: a node shares the host kernel's profiles. Where the kernel has
# AppArmor on but no docker-default profile (the host's engine never loaded
# one), a 20.10 node engine fails every container it starts, for want of an
# apparmor_parser to load it, and one that has the parser would load its own
# profile into the host's kernel and leave it there. Without securityfs the
# node's engine sees no AppArmor and runs containers unconfined, as 23.0 and
# later node engines do anyway where they lack the parser. Where the host
# has docker-default, the node's containers are confined by it.
if [ -d /sys/kernel/security/apparmor ] &&
  ! awk '$1 == "docker-default" { found = 1 } END { exit !found }' \
    /sys/kernel/security/apparmor/profiles 2>/dev/null; then
  umount /sys/kernel/security 2>/dev/null || true
fi
mount --make-rshared / 2>/dev/null || true

# A node container that restarts keeps its writable layer: pid files left by
# the previous run make dockerd and containerd refuse to start.
find /run /var/run \( -name 'docker*.pid' -o -name 'containerd*.pid' \) \
  -exec rm -f {} + 2>/dev/null || true

# swarmlab hands the node engine its TLS identity (CA, certificate, key, as
# PEM) on standard input when the container first starts: in the
# environment the key would show in `docker inspect`, and an upload into
# the container costs the host engine a process per node. A restart finds
# it in the container's own layer. Files are put in place whole, the key
# last, and only when all three came.
if [ "${SWARMLAB_TLS:-}" = stdin ] && [ ! -s /etc/swarmlab/tls/key.pem ]; then
  mkdir -p /etc/swarmlab/tls
  (
    umask 077
    cd /etc/swarmlab/tls &&
      awk '
        /^-----BEGIN / { block++ }
        block == 1 { print > "ca.pem.new" }
        block == 2 { print > "cert.pem.new" }
        block == 3 { print > "key.pem.new" }
        END { exit block != 3 }
      ' &&
      mv ca.pem.new ca.pem && mv cert.pem.new cert.pem && mv key.pem.new key.pem
  ) || {
    echo "swarmlab-node: no complete TLS identity on standard input; not starting" >&2
    exit 1
  }
fi
unset SWARMLAB_TLS

# An --insecure node's plain-HTTP API would make whoever reaches it root on
# the host: only the host may (from its address on the cluster network,
# where its published port on 127.0.0.1 arrives), not other nodes nor any
# container inside a node. No API at all rather than an open one.
if [ -n "${SWARMLAB_API_FROM:-}" ]; then
  iptables -I INPUT -p tcp --dport 2376 ! -s "$SWARMLAB_API_FROM" -j DROP || {
    echo "swarmlab-node: cannot keep the plain-HTTP API to $SWARMLAB_API_FROM (iptables failed); not starting" >&2
    exit 1
  }
fi
unset SWARMLAB_API_FROM

if [ "$#" -eq 0 ]; then
  set -- --host=unix:///var/run/docker.sock
fi
exec dockerd "$@"
