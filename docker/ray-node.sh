#!/bin/sh
# Start one Ray node: the command of every image in docker/compose.yaml, of the namespace test
# in tests/test_cluster.py and of every node of rlcore.testing.netns (tests/test_netns_cluster.py).
#   ray-node.sh head                      the head (GCS on $RAY_PORT, default 6379), foreground
#   ray-node.sh worker HOST:PORT          a rollout node that joins the head, foreground
#   ray-node.sh driver HOST:PORT CMD...   join as a node (a Ray driver must be one), then run
#                                         CMD, e.g. rlcore run x.yaml --set ray.address=HOST:PORT
#                                         --set learner.num_gpus=1 (the learner goes to a GPU node)
#   ray-node.sh health [head]             a probe (docker/kuberay.yaml): exit 0 when this node's
#                                         raylet answers (its agent's /api/local_raylet_healthz
#                                         on 127.0.0.1:$RAY_AGENT_PORT, default 52365) and, with
#                                         `head`, the GCS answers on 127.0.0.1:$RAY_PORT; needs
#                                         only the image's python and ray, no dashboard, no wget
# Token authentication is always on: every node and every driver needs the same RAY_AUTH_TOKEN
# (make one with: python -c "import secrets; print(secrets.token_hex(32))").
# RAY_NODE_IP: the address other nodes reach this one at (default: `hostname -i`);
# RAY_NUM_CPUS / RAY_NUM_GPUS: resources to advertise (default: what Ray detects);
# RAY_RESOURCES: custom resources as JSON, e.g. '{"learner_node": 1}' for the node that
# learner.resources: {learner_node: 1} places the learner on.
set -eu
: "${RAY_AUTH_TOKEN:?set RAY_AUTH_TOKEN to the cluster token (the same on every node and driver)}"
export RAY_AUTH_MODE=token RAY_USAGE_STATS_ENABLED=0
NODE_IP="${RAY_NODE_IP:-$(hostname -i | cut -d' ' -f1)}"
ROLE="${1:-}" HEAD="${2:-}"
RESOURCES="${RAY_NUM_CPUS:+--num-cpus=$RAY_NUM_CPUS} ${RAY_NUM_GPUS:+--num-gpus=$RAY_NUM_GPUS}"
usage() {
    echo "usage: ray-node.sh head | worker HEAD_HOST:PORT | driver HEAD_HOST:PORT COMMAND..." \
         "| health [head]" >&2
    exit 2
}
# shellcheck disable=SC2086
case "$ROLE" in
  head)
    exec ray start --head --block --node-ip-address="$NODE_IP" --port="${RAY_PORT:-6379}" \
      --include-dashboard=false --disable-usage-stats $RESOURCES \
      ${RAY_RESOURCES:+"--resources=$RAY_RESOURCES"} ;;
  worker)
    [ -n "$HEAD" ] || usage
    exec ray start --block --address="$HEAD" --node-ip-address="$NODE_IP" \
      --disable-usage-stats $RESOURCES ${RAY_RESOURCES:+"--resources=$RAY_RESOURCES"} ;;
  driver)
    [ $# -ge 3 ] || usage
    shift 2
    ray start --address="$HEAD" --node-ip-address="$NODE_IP" --disable-usage-stats $RESOURCES \
      ${RAY_RESOURCES:+"--resources=$RAY_RESOURCES"}
    exec "$@" ;;
  health)
    python -c "import sys, urllib.request as u; sys.exit(b'success' not in u.urlopen(
        'http://127.0.0.1:${RAY_AGENT_PORT:-52365}/api/local_raylet_healthz', timeout=5).read())"
    [ "$HEAD" != head ] || exec ray health-check --address="127.0.0.1:${RAY_PORT:-6379}" ;;
  *) usage ;;
esac
