//! An Envoy that reads its listeners from a watched LDS file: how the
//! suites push a configuration without a control plane.

use std::path::Path;

/// The bootstrap: admin on `admin_port`, listeners from `dir/lds.yaml`
/// (watched), and one static loopback cluster per `(name, port)`.
pub fn bootstrap(dir: &Path, admin_port: u16, node: &str, clusters: &[(&str, u16)]) -> String {
    let mut out = format!(
        r#"admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin_port} }} }}
node: {{ id: {node}, cluster: {node} }}
dynamic_resources:
  lds_config:
    resource_api_version: V3
    path_config_source:
      path: {dir}/lds.yaml
      watched_directory: {{ path: {dir} }}
static_resources:
  clusters:
"#,
        dir = dir.display()
    );
    for (name, port) in clusters {
        out.push_str(&format!(
            r#"  - name: {name}
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}
"#
        ));
    }
    out
}

/// Replaces `dir/lds.yaml` atomically (written in `dir/tmp/`, then renamed),
/// as Envoy's watcher expects.
pub fn replace(dir: &Path, content: &str) {
    let tmp = dir.join("tmp").join("lds.yaml");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, dir.join("lds.yaml")).unwrap();
}
