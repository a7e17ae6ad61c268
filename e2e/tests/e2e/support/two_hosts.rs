//! A gateway-like Envoy, as a WasmPlugin or TrafficExtension on a gateway
//! sees one: a listener with two virtual hosts, Keycloak's and a catch-all
//! for another service, a path route in Keycloak's host that sends a prefix
//! to that other service, and the filter on every route. Two recording
//! upstreams show where a secret went.

use super::http1;
use super::upstream::Upstream;
use super::{h2client, Envoy, EnvoySpec, TempDir};
use serde_json::{json, Value as Json};

/// Routed by Keycloak's host to the other service.
pub const OTHER_PREFIX: &str = "/whatever";

/// Where Keycloak is for this gateway, and how its listener reads a port.
pub struct Gateway {
    /// The Envoy cluster name of Keycloak (Istio's `outbound|8080||...`).
    pub keycloak_cluster: String,
    /// The host name Keycloak is served on.
    pub keycloak_host: String,
    /// Keycloak's virtual host also takes `host:*`, as Istio writes a host's
    /// domains; else only `host` (a port then goes to the catch-all).
    pub any_port_domain: bool,
    pub port_stripping: PortStripping,
}

impl Gateway {
    /// Istio's layout: `host` and `host:*`, no port stripping.
    pub fn new(keycloak_cluster: &str, keycloak_host: &str) -> Gateway {
        Gateway {
            keycloak_cluster: keycloak_cluster.to_owned(),
            keycloak_host: keycloak_host.to_owned(),
            any_port_domain: true,
            port_stripping: PortStripping::None,
        }
    }
}

/// What the listener's connection manager does with a port in the authority
/// before it picks a virtual host (and before any filter sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortStripping {
    None,
    /// `strip_any_host_port`: any numeric port.
    Any,
    /// `strip_matching_host_port`: the listener's own port only.
    Matching,
}

/// The Envoy configuration, a template for [`EnvoySpec`]: the listener,
/// admin, Keycloak's port and the module stay placeholders; the other
/// service's port is written in.
fn template(gateway: &Gateway, filter: &Json, other_port: u16) -> String {
    let cluster = |name: &str, port: Json| {
        json!({
            "name": name,
            "type": "STATIC",
            "connect_timeout": "2s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]
            }
        })
    };
    let host = &gateway.keycloak_host;
    let mut domains = vec![json!(host)];
    if gateway.any_port_domain {
        // As Istio writes a host's domains: with and without a port.
        domains.push(json!(format!("{host}:*")));
    }
    let mut manager = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        "normalize_path": true,
        "merge_slashes": true,
        "route_config": {"virtual_hosts": [
            {
                "name": "keycloak",
                "domains": domains,
                "routes": [
                    {"match": {"prefix": format!("{OTHER_PREFIX}/")}, "route": {"cluster": "other-app"}},
                    {"match": {"prefix": "/"}, "route": {"cluster": gateway.keycloak_cluster}}
                ]
            },
            {
                "name": "other",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "other-app"}}]
            }
        ]},
        "http_filters": [
            {"name": "azp_bridge", "typed_config": filter},
            {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
        ]
    });
    match gateway.port_stripping {
        PortStripping::None => {}
        PortStripping::Any => manager["strip_any_host_port"] = json!(true),
        PortStripping::Matching => manager["strip_matching_host_port"] = json!(true),
    }
    let config = json!({
        "admin": {"address": {"socket_address": {"address": "AZP_ADMIN_ADDRESS", "port_value": "AZP_ADMIN_PORT"}}},
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": {"socket_address": {"address": "AZP_LISTEN_ADDRESS", "port_value": "AZP_LISTEN_PORT"}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": manager
                }]}]
            }],
            "clusters": [cluster(&gateway.keycloak_cluster, json!("AZP_UPSTREAM_PORT")), cluster("other-app", json!(other_port))]
        }
    });
    serde_json::to_string_pretty(&config)
        .unwrap()
        .replace("\"AZP_ADMIN_ADDRESS\"", "\"${ADMIN_ADDRESS}\"")
        .replace("\"AZP_LISTEN_ADDRESS\"", "\"${LISTEN_ADDRESS}\"")
        .replace("\"AZP_ADMIN_PORT\"", "${ADMIN_PORT}")
        .replace("\"AZP_LISTEN_PORT\"", "${LISTEN_PORT}")
        .replace("\"AZP_UPSTREAM_PORT\"", "${UPSTREAM_PORT}")
}

/// The wasm filter's typed_config as envoy/azp-bridge.yaml writes it.
pub fn wasm_filter(plugin_config: &str, hold_headers: bool, host_env_keys: &[&str]) -> Json {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": "azp_bridge",
            "root_id": "azp_bridge",
            "allow_on_headers_stop_iteration": hold_headers,
            "failure_policy": "FAIL_RELOAD",
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": plugin_config},
            "vm_config": {
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": "${WASM_PATH}"}},
                "environment_variables": {"host_env_keys": host_env_keys}
            }
        }
    })
}

/// A running gateway and its two upstreams.
pub struct Running {
    pub envoy: Envoy,
    pub keycloak: Upstream,
    pub other: Upstream,
    _dir: TempDir,
}

/// Starts the gateway with `filter` (a wasm typed_config whose module is
/// `${WASM_PATH}`) and the environment `env`.
pub fn start(gateway: &Gateway, filter: &Json, env: &[(&str, &str)]) -> Running {
    let dir = TempDir::new("two-hosts");
    let (keycloak, other) = (Upstream::start(), Upstream::start());
    let path = dir.path.join("gateway.json");
    std::fs::write(&path, template(gateway, filter, other.port)).unwrap();
    let mut spec = EnvoySpec::new("{}", keycloak.port);
    // An absolute path: EnvoySpec joins it to the repository root.
    spec.template = path.display().to_string();
    for (name, value) in env {
        spec = spec.env(name, value);
    }
    Running {
        envoy: spec.start(),
        keycloak,
        other,
        _dir: dir,
    }
}

/// One refresh sent to the gateway, and where it must arrive.
pub struct Probe {
    pub authority: String,
    pub path: String,
    pub http2: bool,
    /// Routed to Keycloak, or to the other service.
    pub to_keycloak: bool,
    /// Keycloak gets it rewritten (else as it was sent).
    pub rewritten: bool,
}

/// Every way to reach the other service with a token request, and the
/// host variations that still reach Keycloak, over HTTP/1.1 and HTTP/2.
/// `path_routes`: include a path that Keycloak's host routes elsewhere
/// (only a cluster check can see that).
pub fn probes(gateway: &Gateway, token_path: &str, path_routes: bool) -> Vec<Probe> {
    let host = &gateway.keycloak_host;
    let mut cases: Vec<(String, String, bool)> = vec![
        (host.clone(), token_path.to_owned(), true),
        (format!("{host}:9443"), token_path.to_owned(), true),
        (host.to_ascii_uppercase(), token_path.to_owned(), true),
        ("other-app.example.com".to_owned(), token_path.to_owned(), false),
        ("other-app.example.com:8080".to_owned(), token_path.to_owned(), false),
        (format!("{host}."), token_path.to_owned(), false),
        (format!("{host}.:443"), token_path.to_owned(), false),
        (format!("evil-{host}"), token_path.to_owned(), false),
        ("127.0.0.1".to_owned(), token_path.to_owned(), false),
    ];
    if path_routes {
        cases.push((host.clone(), format!("{OTHER_PREFIX}{token_path}"), false));
    }
    [false, true]
        .into_iter()
        .flat_map(|http2| {
            cases.iter().map(move |(authority, path, to_keycloak)| Probe {
                authority: authority.clone(),
                path: path.clone(),
                http2,
                to_keycloak: *to_keycloak,
                rewritten: *to_keycloak,
            })
        })
        .collect()
}

/// Sends a form POST to the gateway with this authority; the status.
pub fn send(envoy: &Envoy, probe: &Probe, body: &[u8]) -> u16 {
    if probe.http2 {
        let post = h2client::Post {
            authority: &probe.authority,
            path: &probe.path,
            headers: &[],
            pieces: &[body],
            trailers: None,
        };
        return post.send(envoy.port).status;
    }
    let request = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
        probe.path,
        probe.authority,
        body.len()
    );
    http1::exchange(envoy.port, &[request.as_bytes(), body].concat()).status
}

/// Sends every probe with `body` and checks: it reaches the upstream it is
/// routed to; one not rewritten arrives byte for byte with no secret in it;
/// Keycloak receives each of its own rewritten. `secrets` are the forms a
/// secret could take.
pub fn check(running: &Running, probes: &[Probe], body: &[u8], secrets: &[String]) {
    for probe in probes {
        let (upstream, other) = if probe.to_keycloak {
            (&running.keycloak, &running.other)
        } else {
            (&running.other, &running.keycloak)
        };
        let (before, other_before) = (upstream.requests().len(), other.requests().len());
        let what = format!(
            "{} {} over {}",
            probe.authority,
            probe.path,
            if probe.http2 { "HTTP/2" } else { "HTTP/1.1" }
        );
        assert_eq!(send(&running.envoy, probe, body), 200, "{what}");
        let forwarded = upstream.wait_for(before + 1)[before].clone();
        assert_eq!(
            other.requests().len(),
            other_before,
            "{what}: reached the wrong upstream"
        );
        if probe.rewritten {
            assert!(forwarded.body != body, "{what}: Keycloak did not get the rewrite");
        } else {
            // Not assert_eq: a changed body would carry the secret into the output.
            assert!(forwarded.body == body, "{what}: not forwarded unchanged");
            let seen = format!("{:?} {}", forwarded.headers, forwarded.body_str());
            for secret in secrets {
                assert!(
                    !seen.contains(secret.as_str()),
                    "{what}: the other service received a secret"
                );
            }
        }
    }
}
