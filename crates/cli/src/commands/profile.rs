//! `viewlog profile`: named servers and credentials in the profiles file (mode 0600).

use crate::client_args::{ClientArgs, ProfilesFile};
use anyhow::{bail, Result};
use clap::Subcommand;

/// `viewlog profile …`
#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    /// Save the server and credentials given (flags, environment or --credentials) as a profile.
    Save {
        /// The profile's name.
        name: String,
        #[command(flatten)]
        client: Box<ClientArgs>,
    },
    /// List the profiles (never their secrets).
    List {
        /// The profiles file. [default: ~/.config/viewlog/profiles.toml]
        #[arg(long, env = "VIEWLOG_PROFILES")]
        profiles_file: Option<std::path::PathBuf>,
    },
    /// Delete a profile.
    Delete {
        /// The profile's name.
        name: String,
        /// The profiles file. [default: ~/.config/viewlog/profiles.toml]
        #[arg(long, env = "VIEWLOG_PROFILES")]
        profiles_file: Option<std::path::PathBuf>,
    },
}

/// Runs a profile command.
pub fn run(cmd: ProfileCmd) -> Result<()> {
    match cmd {
        ProfileCmd::Save { name, client } => {
            let path = client.profiles_path();
            let resolved = ClientArgs { profile: None, ..(*client).clone() }.resolve()?;
            crate::client_args::credentials(&resolved)?;
            let mut file = ProfilesFile::load(&path)?;
            file.profiles.insert(name.clone(), resolved);
            file.save(&path)?;
            println!("saved profile {name:?} in {}", path.display());
        }
        ProfileCmd::List { profiles_file } => {
            let path = profiles_file.unwrap_or_else(crate::client_args::default_profiles_path);
            let file = ProfilesFile::load(&path)?;
            let rows: Vec<Vec<String>> = file
                .profiles
                .iter()
                .map(|(name, p)| {
                    let server = p.base_url.clone().or_else(|| p.region.clone()).unwrap_or_else(|| "-".into());
                    let who = p
                        .access_key
                        .as_ref()
                        .map(|k| format!("API 1.0 {}…", k.chars().take(8).collect::<String>()))
                        .or_else(|| p.client_id.as_ref().map(|c| format!("API 2.0 {c}")))
                        .unwrap_or_else(|| "-".into());
                    vec![name.clone(), server, who]
                })
                .collect();
            crate::output::table(&["PROFILE", "SERVER", "CREDENTIALS"], &rows);
        }
        ProfileCmd::Delete { name, profiles_file } => {
            let path = profiles_file.unwrap_or_else(crate::client_args::default_profiles_path);
            let mut file = ProfilesFile::load(&path)?;
            if file.profiles.remove(&name).is_none() {
                bail!("no profile {name:?} in {}", path.display());
            }
            file.save(&path)?;
            println!("deleted profile {name:?}");
        }
    }
    Ok(())
}
