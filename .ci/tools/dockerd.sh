#!/usr/bin/env bash
# Starts Docker Engine (Debian's docker.io) when no daemon answers, and waits for it.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  echo "Docker Engine already running"
  exit 0
fi
command -v dockerd >/dev/null || { echo "dockerd missing: apt-get install docker.io" >&2; exit 1; }
mkdir -p /var/log
nohup dockerd >/var/log/lab-dockerd.log 2>&1 &
for _ in $(seq 60); do
  if docker info >/dev/null 2>&1; then
    echo "Docker Engine $(docker version --format '{{.Server.Version}}') started"
    exit 0
  fi
  sleep 1
done
echo "dockerd did not answer within 60s; its log:" >&2
tail -n 30 /var/log/lab-dockerd.log >&2
exit 1
