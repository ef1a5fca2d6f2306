//! Where `viewlog logs` and `viewlog sync` get their server and credentials: flags or
//! `VIEWLOG_*` environment variables, then `--credentials FILE` (what `viewlog demo` writes),
//! then a named profile in the profiles file (kept 0600).

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use viewlog_client::credentials::CredentialsFile;
use viewlog_client::{ApiV1, ApiV2, Client, Credentials, Region, RetryPolicy};
use viewlog_protocol::secret::Secret;

/// Server and credential flags.
#[derive(Debug, Clone, Default, Args)]
pub struct ClientArgs {
    /// The server's base URL (e.g. http://127.0.0.1:8080).
    #[arg(long, env = "VIEWLOG_BASE_URL")]
    pub base_url: Option<String>,
    /// A Mimecast region instead of a base URL: eu, de, us, usb, uspcom, ca, za, au, je (offshore).
    #[arg(long, env = "VIEWLOG_REGION", conflicts_with = "base_url")]
    pub region: Option<String>,
    /// API 1.0 application id.
    #[arg(long, env = "VIEWLOG_APP_ID")]
    pub app_id: Option<String>,
    /// API 1.0 application key (prefer the environment or a profile: flags show in `ps`).
    #[arg(long, env = "VIEWLOG_APP_KEY", hide_env_values = true)]
    pub app_key: Option<String>,
    /// API 1.0 access key.
    #[arg(long, env = "VIEWLOG_ACCESS_KEY", allow_hyphen_values = true)]
    pub access_key: Option<String>,
    /// API 1.0 secret key.
    #[arg(long, env = "VIEWLOG_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// API 2.0 client id.
    #[arg(long, env = "VIEWLOG_CLIENT_ID", allow_hyphen_values = true)]
    pub client_id: Option<String>,
    /// API 2.0 client secret.
    #[arg(long, env = "VIEWLOG_CLIENT_SECRET", hide_env_values = true, allow_hyphen_values = true)]
    pub client_secret: Option<String>,
    /// A JSON credentials file, as `viewlog demo --credentials` writes.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// A named profile of the profiles file.
    #[arg(long, env = "VIEWLOG_PROFILE")]
    pub profile: Option<String>,
    /// The profiles file. [default: ~/.config/viewlog/profiles.toml]
    #[arg(long, env = "VIEWLOG_PROFILES")]
    pub profiles_file: Option<PathBuf>,
    /// Attempts per request before giving up (429, 5xx, timeouts, dropped connections).
    #[arg(long, default_value_t = 8)]
    pub max_attempts: u32,
}

/// One profile: a server and its credentials.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// See `--base-url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// See `--region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// See `--app-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// See `--app-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    /// See `--access-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// See `--secret-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// See `--client-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// See `--client-secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The address `viewlog login` signed in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The password, kept only with `viewlog login --save-password`, so that an expired
    /// binding (418) is refreshed without asking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The profiles file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesFile {
    /// Profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// The default profiles file.
pub fn default_profiles_path() -> PathBuf {
    dirs::config_dir().unwrap_or_else(|| PathBuf::from(".")).join("viewlog").join("profiles.toml")
}

impl ProfilesFile {
    /// Reads the file; refuses one that others may read.
    pub fn load(path: &Path) -> Result<ProfilesFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProfilesFile::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!("{} holds secrets but has mode {mode:o}; run: chmod 600 {}", path.display(), path.display());
            }
        }
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes the file with mode 0600 (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = path.with_extension("toml.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(toml::to_string_pretty(self)?.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

impl ClientArgs {
    /// The profiles file in use.
    pub fn profiles_path(&self) -> PathBuf {
        self.profiles_file.clone().unwrap_or_else(default_profiles_path)
    }

    /// Merges flags/environment over the credentials file over the profile.
    pub fn resolve(&self) -> Result<Profile> {
        let mut merged = Profile::default();
        if let Some(name) = &self.profile {
            let file = ProfilesFile::load(&self.profiles_path())?;
            merged = file
                .profiles
                .get(name)
                .cloned()
                .ok_or_else(|| anyhow!("no profile {name:?} in {}", self.profiles_path().display()))?;
        }
        if let Some(path) = &self.credentials {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let c: CredentialsFile =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            overlay(
                &mut merged,
                c.base_url,
                c.app_id,
                c.app_key,
                c.access_key,
                c.secret_key,
                c.client_id,
                c.client_secret,
            );
        }
        overlay(
            &mut merged,
            self.base_url.clone(),
            self.app_id.clone(),
            self.app_key.clone(),
            self.access_key.clone(),
            self.secret_key.clone(),
            self.client_id.clone(),
            self.client_secret.clone(),
        );
        if let Some(r) = &self.region {
            merged.region = Some(r.clone());
            merged.base_url = None;
        }
        Ok(merged)
    }

    /// A client for the resolved server and credentials.
    pub fn client(&self) -> Result<Client> {
        let p = self.resolve()?;
        let base_url = match (&p.base_url, &p.region) {
            (Some(url), _) => url.clone(),
            (None, Some(region)) => region.parse::<Region>().map_err(|e| anyhow!(e))?.base_url().to_owned(),
            (None, None) => bail!("no server: give --base-url, --region, --credentials or --profile"),
        };
        let credentials = credentials(&p)?;
        let retry = RetryPolicy { max_attempts: self.max_attempts.max(1), ..Default::default() };
        let client = Client::with_retry(&base_url, credentials, retry)?;
        let password = std::env::var("VIEWLOG_PASSWORD").ok().or(p.password.clone());
        Ok(match (p.email.clone(), password) {
            (Some(email), Some(password)) => client.with_password_refresh(email, Secret::new(password)),
            _ => client,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn overlay(
    p: &mut Profile,
    base_url: Option<String>,
    app_id: Option<String>,
    app_key: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
) {
    if base_url.is_some() {
        p.base_url = base_url;
        p.region = None;
    }
    macro_rules! over {
        ($($f:ident),*) => { $( if $f.is_some() { p.$f = $f; } )* };
    }
    over!(app_id, app_key, access_key, secret_key, client_id, client_secret);
}

/// The credentials a profile holds: API 1.0 if it has an access key, else API 2.0.
pub fn credentials(p: &Profile) -> Result<Credentials> {
    if let Some(access_key) = &p.access_key {
        let need = |v: &Option<String>, name: &str| v.clone().ok_or_else(|| anyhow!("API 1.0 credentials need {name}"));
        return Ok(Credentials::V1(ApiV1 {
            app_id: need(&p.app_id, "--app-id")?,
            app_key: Secret::new(need(&p.app_key, "--app-key")?),
            access_key: access_key.clone(),
            secret_key: Secret::new(need(&p.secret_key, "--secret-key")?),
        }));
    }
    if let (Some(id), Some(secret)) = (&p.client_id, &p.client_secret) {
        return Ok(Credentials::V2(ApiV2 { client_id: id.clone(), client_secret: Secret::new(secret.clone()) }));
    }
    bail!("no credentials: give --access-key/--secret-key/--app-id/--app-key (API 1.0), --client-id/--client-secret (API 2.0), --credentials FILE or --profile NAME")
}

#[cfg(test)]
mod tests {
    use super::ClientArgs;
    use clap::Parser;

    /// Access keys, client ids and client secrets are base64url: one in 64 starts with `-`, and
    /// must still be taken as the flag's value.
    #[test]
    fn credentials_may_start_with_a_hyphen() {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            client: ClientArgs,
        }
        let cli = Cli::try_parse_from([
            "viewlog",
            "--access-key",
            "-IoHx",
            "--client-id",
            "-cid",
            "--client-secret",
            "-csecret",
        ])
        .expect("parses");
        assert_eq!(cli.client.access_key.as_deref(), Some("-IoHx"));
        assert_eq!(cli.client.client_id.as_deref(), Some("-cid"));
        assert_eq!(cli.client.client_secret.as_deref(), Some("-csecret"));
    }
}
