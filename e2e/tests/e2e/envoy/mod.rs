//! Needs a real Envoy and the built module; nothing else. A file per feature.

mod access_log;
mod config_reload;
mod configs;
mod docker_compose;
mod failure_policy;
mod filter;
mod hostile;
mod id_token;
mod lost_bridge;
mod mesh_manifests;
mod operations;
mod render_tls;
mod upstream_guard;
