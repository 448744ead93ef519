//! Where dirsync keeps its configuration and state.

use std::path::{Path, PathBuf};

/// The files of one dirsync installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub config_file: PathBuf,
    pub state_db: PathBuf,
    /// The service's secrets, encrypted with systemd-creds (see `secret_store`).
    pub credentials_dir: PathBuf,
}

impl Home {
    /// `--home DIR` (or `DIRSYNC_HOME`) puts both files in DIR; otherwise the configuration goes to
    /// the platform's config directory and the state to its data directory.
    pub fn resolve(explicit: Option<&Path>) -> Home {
        if let Some(dir) = explicit {
            return Home::in_dir(dir);
        }
        match directories::ProjectDirs::from("", "", "dirsync") {
            Some(dirs) => Home {
                config_file: dirs.config_dir().join("config.toml"),
                state_db: dirs.data_dir().join("state.db"),
                credentials_dir: dirs.data_dir().join("credentials"),
            },
            // No home directory at all (a bare service account): fall back to the working directory.
            None => Home::in_dir(Path::new(".")),
        }
    }

    pub fn in_dir(dir: &Path) -> Home {
        Home {
            config_file: dir.join("config.toml"),
            state_db: dir.join("state.db"),
            credentials_dir: dir.join("credentials"),
        }
    }

    /// The secrets of this installation: the OS keyring and its systemd credentials.
    pub fn secrets(&self) -> crate::secret_store::SystemSecrets {
        crate::secret_store::SystemSecrets::for_home(&self.credentials_dir)
    }

    /// True once setup has saved a configuration.
    pub fn is_configured(&self) -> bool {
        self.config_file.is_file()
    }
}

/// This computer's name: `HOSTNAME`, else /etc/hostname, else "dirsync". Setup marks the
/// service account and the app with it; runs and the export lease name their host by it
/// (README, "Two hosts, one database").
pub fn host_name() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_file = || std::fs::read_to_string("/etc/hostname").ok();
    from_env
        .into_iter()
        .chain(from_file())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "dirsync".to_owned())
}
