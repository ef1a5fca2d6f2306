//! `viewlog login` and `viewlog logout`: obtain a key binding with a password and keep it in a
//! profile (mode 0600); end it.

use crate::client_args::{ClientArgs, Profile, ProfilesFile};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use std::io::{BufRead, IsTerminal};
use viewlog_client::login;
use viewlog_protocol::secret::Secret;

/// `viewlog login` flags.
#[derive(Debug, Args)]
pub struct LoginCmd {
    /// The address to sign in as.
    #[arg(long)]
    email: String,
    /// Read the password from the first line of standard input instead of asking.
    #[arg(long)]
    password_stdin: bool,
    /// Keep the password in the profile, so that an expired binding is refreshed by itself.
    #[arg(long)]
    save_password: bool,
    /// Ask the server (discover-authentication) which base URL the address signs in at.
    #[arg(long)]
    discover: bool,
    #[command(flatten)]
    client: ClientArgs,
}

/// `viewlog logout` flags.
#[derive(Debug, Args)]
pub struct LogoutCmd {
    /// The profile whose binding ends.
    #[arg(long, default_value = "default")]
    profile: String,
    /// The profiles file. [default: ~/.config/viewlog/profiles.toml]
    #[arg(long, env = "VIEWLOG_PROFILES")]
    profiles_file: Option<std::path::PathBuf>,
}

fn read_password(from_stdin: bool) -> Result<Secret> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
        return Ok(Secret::new(line.trim_end_matches(['\r', '\n']).to_owned()));
    }
    rpassword::prompt_password("Password: ").map(Secret::new).context("reading the password")
}

/// Signs in and stores the binding.
pub async fn login(cmd: LoginCmd) -> Result<()> {
    // `--profile` names the profile the binding is stored in (created or updated).
    let profile = cmd.client.profile.clone().unwrap_or_else(|| "default".to_owned());
    let path = cmd.client.profiles_path();
    let mut file = ProfilesFile::load(&path)?;
    let existing = file.profiles.get(&profile).cloned().unwrap_or_default();
    let given = ClientArgs { profile: None, ..cmd.client.clone() }.resolve()?;
    let mut p = Profile {
        base_url: given.base_url.or(existing.base_url.clone()),
        region: given.region.or(existing.region.clone()),
        app_id: given.app_id.or(existing.app_id.clone()),
        app_key: given.app_key.or(existing.app_key.clone()),
        ..existing.clone()
    };
    let mut base = match (&p.base_url, &p.region) {
        (Some(url), _) => url.clone(),
        (None, Some(r)) => r.parse::<viewlog_client::Region>().map_err(|e| anyhow!(e))?.base_url().to_owned(),
        (None, None) => bail!("no server: give --base-url or --region"),
    };
    let app_id = p.app_id.clone().ok_or_else(|| anyhow!("signing in needs the application id (--app-id)"))?;
    if p.app_key.is_none() {
        bail!("signed requests need the application key too (--app-key)");
    }
    if cmd.discover {
        let found = login::discover(&base, &cmd.email).await?;
        match found.region {
            Some(region) => base = region.api,
            None => bail!("{} cannot sign in at {base}", cmd.email),
        }
        p.base_url = Some(base.clone());
        p.region = None;
    }
    let password = read_password(cmd.password_stdin)?;
    if password.expose().is_empty() {
        bail!("empty password");
    }
    // Same user and application: refresh the binding we hold instead of making another.
    let refresh = existing.access_key.as_deref().filter(|_| {
        existing.email.as_deref() == Some(cmd.email.as_str()) && existing.app_id.as_deref() == Some(&app_id)
    });
    let binding = match login::login(&base, &app_id, &cmd.email, &password, refresh).await {
        Ok(b) => b,
        Err(e) if refresh.is_some() => {
            tracing::info!(error = %e, "refreshing the stored binding failed; signing in for a new one");
            login::login(&base, &app_id, &cmd.email, &password, None).await?
        }
        Err(e) => return Err(e.into()),
    };
    p.access_key = Some(binding.access_key.clone());
    p.secret_key = Some(binding.secret_key.expose().to_owned());
    p.email = Some(cmd.email.clone());
    p.password = cmd.save_password.then(|| password.expose().to_owned());
    file.profiles.insert(profile.clone(), p);
    file.save(&path)?;
    println!(
        "signed in as {} at {base}; binding {} stored in profile {:?} ({}){}",
        cmd.email,
        binding.access_key,
        profile,
        path.display(),
        binding.expires.map(|e| format!(", expires {e}")).unwrap_or_else(|| ", never expires".into())
    );
    Ok(())
}

/// Ends the profile's binding and forgets its keys.
pub async fn logout(cmd: LogoutCmd) -> Result<()> {
    let path = cmd.profiles_file.clone().unwrap_or_else(crate::client_args::default_profiles_path);
    let mut file = ProfilesFile::load(&path)?;
    let Some(p) = file.profiles.get(&cmd.profile).cloned() else {
        bail!("no profile {:?} in {}", cmd.profile, path.display());
    };
    let access_key = p.access_key.clone().ok_or_else(|| anyhow!("profile {:?} holds no binding", cmd.profile))?;
    let args =
        ClientArgs { profile: Some(cmd.profile.clone()), profiles_file: Some(path.clone()), ..Default::default() };
    let client = args.client()?;
    client.logout(&access_key).await?;
    let entry = file.profiles.entry(cmd.profile.clone()).or_default();
    entry.access_key = None;
    entry.secret_key = None;
    entry.password = None;
    file.save(&path)?;
    println!("signed out: binding {access_key} removed");
    Ok(())
}
