# Sourced by bench/run.sh and bench/icount.sh: the modules both measure and
# the filter configuration they run with (BENCH_DIR is set by the caller).

# azp-bridge's configuration for every variant that runs it (the Lua script
# of bench/run.sh carries the same clients).
PLUGIN_CONFIG="$(cat "${BENCH_DIR}/fixtures/plugin-config.json")"
# The reference module: the last one before the design's packages. It
# predates upstream_clusters (and refuses unknown fields).
REFERENCE="${BENCH_REFERENCE:-21b7dbb}"
REFERENCE_PLUGIN_CONFIG="${PLUGIN_CONFIG/\"upstream_clusters\":\[\"keycloak\"\],/}"
# The commits between the reference and today, name=commit, in order; their
# modules take PLUGIN_CONFIG as it is (upstream_clusters came with the first).
STEPS="${BENCH_STEPS-sec=4842636 pkgs=75a421c idt=84b3e4d}"
