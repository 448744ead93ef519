//! What dirsync synchronizes: users and groups. One word for the directory's objects, the cloud's
//! collections and the run records (`"user"`, `"group"` in `state.db` and `--json`).

use std::fmt;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ObjectKind {
    #[serde(rename = "user")]
    User,
    #[serde(rename = "group")]
    Group,
}

impl ObjectKind {
    pub const ALL: &'static [ObjectKind] = &[ObjectKind::User, ObjectKind::Group];

    /// The stored word: `user`, `group`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::User => "user",
            ObjectKind::Group => "group",
        }
    }

    pub fn parse(text: &str) -> Option<ObjectKind> {
        match text {
            "user" => Some(ObjectKind::User),
            "group" => Some(ObjectKind::Group),
            _ => None,
        }
    }

    /// Graph's collection: `users`, `groups`.
    pub fn collection(self) -> &'static str {
        match self {
            ObjectKind::User => "users",
            ObjectKind::Group => "groups",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for kind in ObjectKind::ALL {
            assert_eq!(ObjectKind::parse(kind.as_str()), Some(*kind));
            assert_eq!(
                serde_json::to_string(kind).expect("json"),
                format!("\"{kind}\"")
            );
        }
        assert_eq!(ObjectKind::Group.collection(), "groups");
    }
}
