//! A real Keycloak (scripts/keycloak.sh), started for a test binary and
//! stopped when the handle drops, also after a failure.

use super::{free_port, repo_root, TempDir};
use std::process::Command;

pub const REALM: &str = "demo";
pub const ADMIN_CLIENT: &str = "spring-boot-admin-client";
pub const ADMIN_CLIENT_SECRET: &str = "admin-client-secret-CHANGE-ME";
pub const BASIC_ONLY_CLIENT: &str = "basic-only-client";
pub const BASIC_ONLY_SECRET: &str = "basic-only-secret-CHANGE-ME";
pub const MOBILE_CLIENT: &str = "mobile-app-client";
pub const OTHER_PUBLIC_CLIENT: &str = "other-public-client";
/// private_key_jwt (ES256) with the test key of tests/fixtures.
pub const JWT_CLIENT: &str = "jwt-admin-client";
pub const JWT_KEY_ID: &str = "azp-bridge-test-es256";
pub const JWT_KEY_PEM: &str = include_str!("../../../../tests/fixtures/es256-test-key.pem");
/// private_key_jwt (EdDSA) with the Ed25519 test key of tests/fixtures.
pub const EDDSA_CLIENT: &str = "eddsa-admin-client";
pub const EDDSA_KEY_ID: &str = "azp-bridge-test-ed25519";
pub const EDDSA_KEY_PEM: &str = include_str!("../../../../tests/fixtures/ed25519-test-key.pem");
/// client_secret_jwt (HS256).
pub const SECRET_JWT_CLIENT: &str = "secret-jwt-admin-client";
pub const SECRET_JWT_SECRET: &str = "secret-jwt-admin-secret-0123456789-CHANGE-ME";
/// One client id in the tenant-a, tenant-b and tenant-c realms, each with its own secret.
pub const TENANT_CLIENT: &str = "portal-backend";
pub const TENANT_PUBLIC_CLIENT: &str = "web-spa";
pub fn tenant_secret(tenant: &str) -> String {
    format!("{tenant}-portal-secret-CHANGE-ME")
}

pub struct Keycloak {
    pub port: u16,
    env: Vec<(String, String)>,
    pub dir: TempDir,
}

impl Keycloak {
    /// Installs (cached) and starts Keycloak; returns once it is ready.
    pub fn start() -> Keycloak {
        Self::start_with_hostname(None)
    }

    /// Keycloak whose public URL (`--hostname`, every token's `iss`) is
    /// `hostname`: the Envoy in front of it, as operators deploy it.
    pub fn start_behind(hostname: &str) -> Keycloak {
        Self::start_with_hostname(Some(hostname))
    }

    fn start_with_hostname(hostname: Option<&str>) -> Keycloak {
        let dir = TempDir::new("keycloak");
        let port = free_port();
        let hostname = hostname.map_or_else(|| format!("http://127.0.0.1:{port}"), str::to_owned);
        let env = vec![
            ("KEYCLOAK_PORT".to_owned(), port.to_string()),
            ("KEYCLOAK_MGMT_PORT".to_owned(), free_port().to_string()),
            ("KEYCLOAK_HOSTNAME".to_owned(), hostname),
            (
                "KEYCLOAK_LOG".to_owned(),
                dir.path.join("keycloak.log").display().to_string(),
            ),
            (
                "KEYCLOAK_PIDFILE".to_owned(),
                dir.path.join("keycloak.pid").display().to_string(),
            ),
        ];
        let keycloak = Keycloak { port, env, dir };
        let status = keycloak.script("start").status().expect("scripts/keycloak.sh runs");
        assert!(status.success(), "Keycloak did not start (see the log tail above)");
        keycloak
    }

    /// Stops the server (same ports and settings kept for `restart`).
    pub fn stop(&self) {
        assert!(self.script("stop").status().unwrap().success());
    }

    /// Starts it again after `stop`: a fresh in-memory database, so every
    /// earlier session and token is gone.
    pub fn restart(&self) {
        assert!(
            self.script("start").status().unwrap().success(),
            "Keycloak did not come back"
        );
    }

    fn script(&self, command: &str) -> Command {
        let mut cmd = Command::new(repo_root().join("scripts/keycloak.sh"));
        cmd.arg(command).envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("keycloak.log")).unwrap_or_default()
    }
}

impl Drop for Keycloak {
    fn drop(&mut self) {
        let _ = self.script("stop").status();
    }
}
