//! scripts/render-envoy.sh's TLS to Keycloak (SNI, a CA bundle, a client
//! certificate) in a real Envoy, against a local TLS upstream whose
//! certificates the test makes with openssl. (The script's other promises:
//! tests/render_envoy.rs, in the native tier.)

use crate::support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::path::Path;
use std::process::{Command, Output};
use support::http1::{self, form_post};
use support::upstream::Upstream;
use support::{repo_root, EnvoySpec, TempDir};

use support::TOKEN_PATH;
/// An inline secret with two spaces: a squeezing renderer would change it.
const SPACED_SECRET: &str = "pa  ss";
const KEYCLOAK_NAME: &str = "keycloak.internal.test";

fn render(dir: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(repo_root().join("scripts/render-envoy.sh"))
        .current_dir(dir)
        .env_remove("PLUGIN_CONFIG_FILE")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn rendered(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A plugin configuration file as people write them: indented, on many lines.
fn write_plugin_config(dir: &Path) -> &'static str {
    std::fs::write(
        dir.join("my-config.json"),
        format!(
            "{{\r\n  \"upstream_clusters\": [\"keycloak\"],\n\n  \"clients\": [\n    {{\n      \"client_id\": \"admin\",\n      \"client_secret\": \"{SPACED_SECRET}\",\t\n      \"allowed_callers\": [\"mobile\"]\n    }}\n  ]\n}}\n"
        ),
    )
    .unwrap();
    "my-config.json"
}

// --- TLS to Keycloak ---

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (README, Prerequisites)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA, a server certificate for `name` and a client certificate, signed by it.
fn make_certificates(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=azp-bridge test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    for (who, ext) in [
        (
            "server",
            format!("subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\n"),
        ),
        ("client", "extendedKeyUsage=clientAuth\n".to_owned()),
    ] {
        std::fs::write(dir.join(format!("{who}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN={who}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{who}.pem"),
                "-extfile",
                &format!("{who}.ext"),
            ],
        );
    }
}

/// An Envoy that terminates TLS as `KEYCLOAK_NAME` (client certificate
/// required) in front of the recording upstream: a template for EnvoySpec.
fn tls_upstream_template(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: ${{ADMIN_PORT}} }} }}
static_resources:
  listeners:
  - name: tls
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: ${{LISTEN_PORT}} }} }}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates:
            - {{ certificate_chain: {{ filename: {d}/server.pem }}, private_key: {{ filename: {d}/server.key }} }}
            validation_context: {{ trusted_ca: {{ filename: {d}/ca.pem }} }}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: tls
          route_config:
            virtual_hosts:
            - {{ name: all, domains: ["*"], routes: [{{ match: {{ prefix: "/" }}, route: {{ cluster: recorder }} }}] }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - name: recorder
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: recorder
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: ${{UPSTREAM_PORT}} }} }} }}
"#
    )
}

fn stat(admin_port: u16, name: &str) -> u64 {
    let stats = http1::get(admin_port, &format!("/stats?filter=^{name}$")).unwrap();
    stats
        .body_str()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no stat {name}: {}", stats.body_str()))
}

fn refresh_body() -> String {
    let payload = r#"{"iss":"http://keycloak.test/realms/demo","azp":"admin","typ":"Refresh"}"#;
    format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token=h.{}.s",
        URL_SAFE_NO_PAD.encode(payload)
    )
}

/// The shipped template rendered by the script with TLS on; the listener,
/// admin and upstream ports stay placeholders for EnvoySpec.
fn front_spec(dir: &Path, name: &str, tls: &[(&str, &str)], tls_port: u16) -> EnvoySpec {
    let file = write_plugin_config(dir);
    let d = dir.display().to_string();
    let ca = format!("{d}/ca.pem");
    let mut env = vec![
        ("PLUGIN_CONFIG_FILE", file),
        ("LISTEN_PORT", "${LISTEN_PORT}"),
        ("ADMIN_PORT", "${ADMIN_PORT}"),
        ("UPSTREAM_PORT", "${UPSTREAM_PORT}"),
        ("UPSTREAM_HOST", "127.0.0.1"),
        ("UPSTREAM_TLS", "true"),
        ("UPSTREAM_TLS_CA_FILE", &ca),
        ("HOST_ENV_KEYS", "[]"),
    ];
    env.extend_from_slice(tls);
    let config = rendered(&render(dir, &env));
    assert!(config.contains("envoy.transport_sockets.tls"), "{config}");
    let path = dir.join(format!("front-{name}.yaml"));
    std::fs::write(&path, config).unwrap();
    let mut spec = EnvoySpec::new("{}", tls_port);
    spec.template = path.display().to_string();
    spec
}

#[test]
fn tls_to_keycloak_with_sni_a_ca_bundle_and_a_client_certificate() {
    let dir = TempDir::new("tls");
    make_certificates(&dir.path, KEYCLOAK_NAME);
    let recorder = Upstream::start();
    let template = dir.path.join("tls-upstream.yaml");
    std::fs::write(&template, tls_upstream_template(&dir.path)).unwrap();
    let mut tls_spec = EnvoySpec::new("{}", recorder.port);
    tls_spec.template = template.display().to_string();
    let keycloak = tls_spec.start();

    let d = dir.path.display().to_string();
    let (cert, key) = (format!("{d}/client.pem"), format!("{d}/client.key"));
    let client_cert = [
        ("UPSTREAM_TLS_SNI", KEYCLOAK_NAME),
        ("UPSTREAM_TLS_CERT_FILE", cert.as_str()),
        ("UPSTREAM_TLS_KEY_FILE", key.as_str()),
    ];
    let body = refresh_body();

    // Right name, trusted CA, client certificate: rewritten, over TLS.
    let front = front_spec(&dir.path, "ok", &client_cert, keycloak.port).start();
    let response = http1::exchange(front.port, &form_post(TOKEN_PATH, &[], body.as_bytes()));
    assert_eq!(response.status, 200);
    let forwarded = recorder.single();
    assert_eq!(
        forwarded.body_str(),
        format!(
            "{}&client_id=admin&client_secret=pa++ss",
            body.replace("&client_id=mobile", "")
        ),
        "the inline secret keeps both spaces"
    );
    let tls_stats = http1::get(keycloak.admin_port, "/stats?filter=^listener.*ssl.handshake$").unwrap();
    assert!(
        tls_stats.body_str().trim_end().ends_with("ssl.handshake: 1"),
        "{}",
        tls_stats.body_str()
    );
    drop(front);

    // A certificate that does not name the SNI: refused, nothing reaches Keycloak.
    let wrong_name = [
        ("UPSTREAM_TLS_SNI", "other.internal.test"),
        ("UPSTREAM_TLS_CERT_FILE", cert.as_str()),
        ("UPSTREAM_TLS_KEY_FILE", key.as_str()),
    ];
    let front = front_spec(&dir.path, "wrong-name", &wrong_name, keycloak.port).start();
    let response = http1::exchange(front.port, &form_post(TOKEN_PATH, &[], body.as_bytes()));
    assert_eq!(response.status, 503);
    assert_eq!(stat(front.admin_port, "cluster.keycloak.ssl.fail_verify_san"), 1);
    drop(front);

    // No client certificate where Keycloak requires one: refused.
    let front = front_spec(
        &dir.path,
        "no-cert",
        &[("UPSTREAM_TLS_SNI", KEYCLOAK_NAME)],
        keycloak.port,
    )
    .start();
    let response = http1::exchange(front.port, &form_post(TOKEN_PATH, &[], body.as_bytes()));
    assert_eq!(response.status, 503);
    let refused = http1::get(keycloak.admin_port, "/stats?filter=ssl.fail_verify_no_cert$").unwrap();
    assert!(
        refused.body_str().trim_end().ends_with("ssl.fail_verify_no_cert: 1"),
        "{}",
        refused.body_str()
    );
    assert_eq!(recorder.requests().len(), 1, "only the first request reached Keycloak");
    keycloak.assert_log_clean(&[SPACED_SECRET]);
}
