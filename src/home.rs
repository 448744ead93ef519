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
