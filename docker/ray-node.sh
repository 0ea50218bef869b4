#!/bin/sh
# Start one Ray node in the foreground (the command of every image in docker/compose.yaml, and
# of the namespace test in tests/test_cluster.py):
#   ray-node.sh head              the head: GCS on $RAY_PORT (default 6379), no dashboard
#   ray-node.sh worker HOST:PORT  a node that joins the head
# Token authentication is always on: every node and every driver needs the same RAY_AUTH_TOKEN
# (make one with `python -c "import secrets; print(secrets.token_hex(32))"`).
# RAY_NODE_IP: the address other nodes reach this one at (default: `hostname -i`);
# RAY_NUM_CPUS / RAY_NUM_GPUS: resources to advertise (default: what Ray detects).
set -eu
: "${RAY_AUTH_TOKEN:?set RAY_AUTH_TOKEN to the cluster token (the same on every node and driver)}"
export RAY_AUTH_MODE=token RAY_USAGE_STATS_ENABLED=0
NODE_IP="${RAY_NODE_IP:-$(hostname -i | cut -d' ' -f1)}"
set -- "$@" ""
ROLE="$1" HEAD="$2"
RESOURCES="${RAY_NUM_CPUS:+--num-cpus=$RAY_NUM_CPUS} ${RAY_NUM_GPUS:+--num-gpus=$RAY_NUM_GPUS}"
case "$ROLE" in
  head)
    # shellcheck disable=SC2086
    exec ray start --head --block --node-ip-address="$NODE_IP" --port="${RAY_PORT:-6379}" \
      --include-dashboard=false --disable-usage-stats $RESOURCES ;;
  worker)
    [ -n "$HEAD" ] || { echo "usage: ray-node.sh worker HEAD_HOST:PORT" >&2; exit 2; }
    # shellcheck disable=SC2086
    exec ray start --block --address="$HEAD" --node-ip-address="$NODE_IP" \
      --disable-usage-stats $RESOURCES ;;
  *)
    echo "usage: ray-node.sh head | ray-node.sh worker HEAD_HOST:PORT" >&2; exit 2 ;;
esac
