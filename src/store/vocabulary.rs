//! The words a run record is made of. Their text forms are stable: they are stored in `state.db` and
//! printed in `--json` output.

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// What started a run.
    RunTrigger {
        Wizard => "wizard",
        Schedule => "schedule",
        Manual => "manual",
        Cli => "cli",
        Trace => "trace",
        Push => "push",
    }
);

text_enum!(
    /// What kind of cycle a run is.
    RunMode { Full => "full", Delta => "delta", Preview => "preview", Password => "password" }
);

text_enum!(
    /// How a run ended (or that it is still going).
    RunStatus {
        Running => "running",
        Success => "success",
        CompletedWithErrors => "completed-with-errors",
        StoppedDeletionThreshold => "stopped-deletion-threshold",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

text_enum!(
    /// The steps of a cycle, in cycle order.
    StepKind {
        DirectoryImport => "directory-import",
        CloudImport => "cloud-import",
        Synchronization => "synchronization",
        CloudExport => "cloud-export",
        WriteBackExport => "write-back-export",
    }
);

text_enum!(
    /// What happened to one object in one step.
    ChangeKind { Add => "add", Update => "update", Rename => "rename", Delete => "delete" }
);

pub use crate::object_kind::ObjectKind;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::parse(status.as_str()), Some(*status));
            let json = serde_json::to_string(status).expect("json");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(StepKind::parse("cloud-export"), Some(StepKind::CloudExport));
        assert_eq!(RunMode::parse("bogus"), None);
    }
}
