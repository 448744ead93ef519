//! A string that must never be shown: passwords, client secrets, tokens.

use std::fmt;

use serde::Deserialize;
use zeroize::Zeroizing;

/// Holds a secret. `Debug` and `Display` print a placeholder so that a secret can't reach a log line
/// or an error message by accident; `expose` is the one, greppable way to read it. Its memory is
/// overwritten when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Secrets arrive in JSON answers (tokens, a new client secret); they are wrapped at once.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let secret = Secret::new("Hunter2-very-secret");
        assert!(!format!("{secret:?} {secret} {secret:#?}").contains("Hunter2"));
        assert_eq!(secret.expose(), "Hunter2-very-secret");
    }
}
