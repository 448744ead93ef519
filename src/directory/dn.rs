//! Distinguished names (RFC 4514) as Active Directory treats them: attribute types and values compare
//! case-insensitively, and escaped characters compare by what they stand for
//! (`CN=a\,b` equals `cn=A\2CB`).

use std::fmt;

/// One `type=value` pair of a DN (multi-valued RDNs, `a=1+b=2`, are kept as one pair per component
/// because Active Directory never creates them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    /// Attribute type as written, e.g. `OU`.
    pub attribute: String,
    /// Value with escapes removed, e.g. `Sales, EMEA` for `OU=Sales\, EMEA`.
    pub value: String,
}

/// A parsed distinguished name. Keeps the text it was parsed from for display; compares by the
/// normalized form. The default is the empty DN (the root DSE).
#[derive(Debug, Clone, Default)]
pub struct Dn {
    text: String,
    rdns: Vec<Rdn>,
    /// Lowercased `type=value` pairs with values re-escaped canonically, joined by commas.
    normalized: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid distinguished name ({reason}): {text}")]
pub struct DnParseError {
    pub text: String,
    pub reason: &'static str,
}

impl Dn {
    /// Parses a DN such as `OU=Sales,DC=corp,DC=example,DC=com`. The empty string is the root DSE.
    pub fn parse(text: &str) -> Result<Self, DnParseError> {
        let error = |reason| DnParseError {
            text: text.to_owned(),
            reason,
        };
        let mut rdns = Vec::new();
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            for component in split_unescaped(trimmed, &[',', ';']).map_err(error)? {
                if split_unescaped(&component, &['+']).map_err(error)?.len() > 1 {
                    return Err(error("multi-valued RDNs are not supported"));
                }
                let Some((attribute, raw_value)) = component.split_once('=') else {
                    return Err(error("a component has no '='"));
                };
                let attribute = attribute.trim();
                if attribute.is_empty()
                    || !attribute
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                {
                    return Err(error(
                        "an attribute type is empty or has invalid characters",
                    ));
                }
                let value = unescape_value(raw_value.trim_start()).map_err(error)?;
                if value.is_empty() {
                    return Err(error("an attribute value is empty"));
                }
                rdns.push(Rdn {
                    attribute: attribute.to_owned(),
                    value,
                });
            }
        }
        let normalized = normalize(&rdns);
        Ok(Dn {
            text: trimmed.to_owned(),
            rdns,
            normalized,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn rdns(&self) -> &[Rdn] {
        &self.rdns
    }

    /// The value of the first RDN: `Sales` for `OU=Sales,DC=corp`.
    pub fn rdn_value(&self) -> Option<&str> {
        self.rdns.first().map(|rdn| rdn.value.as_str())
    }

    /// The DN one level up, or `None` for the root.
    pub fn parent(&self) -> Option<Dn> {
        if self.rdns.is_empty() {
            return None;
        }
        let rest: Vec<Rdn> = self.rdns[1..].to_vec();
        Some(Dn::from_rdns(rest))
    }

    /// A child of this DN: `child("OU", "Paris")` under `OU=EMEA,…` is `OU=Paris,OU=EMEA,…`.
    pub fn child(&self, attribute: &str, value: &str) -> Dn {
        let mut rdns = vec![Rdn {
            attribute: attribute.to_owned(),
            value: value.to_owned(),
        }];
        rdns.extend(self.rdns.iter().cloned());
        Dn::from_rdns(rdns)
    }

    /// True when `self` is `ancestor` or lies below it.
    pub fn is_within(&self, ancestor: &Dn) -> bool {
        let depth = ancestor.rdns.len();
        self.rdns.len() >= depth
            && self.rdns[self.rdns.len() - depth..]
                .iter()
                .zip(&ancestor.rdns)
                .all(|(a, b)| {
                    a.attribute.eq_ignore_ascii_case(&b.attribute)
                        && a.value.to_lowercase() == b.value.to_lowercase()
                })
    }

    /// The domain a naming context names, as DNS says it: its DC parts joined with dots,
    /// lowercase (`DC=Corp,DC=example,DC=com` → `corp.example.com`); the DN itself when it has
    /// none.
    pub fn dns_name(&self) -> String {
        let labels: Vec<&str> = self
            .rdns()
            .iter()
            .filter(|rdn| rdn.attribute.eq_ignore_ascii_case("DC"))
            .map(|rdn| rdn.value.as_str())
            .collect();
        if labels.is_empty() {
            self.to_string()
        } else {
            labels.join(".").to_lowercase()
        }
    }

    /// The normalized text used for comparison and as a map key.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    fn from_rdns(rdns: Vec<Rdn>) -> Dn {
        let text = rdns
            .iter()
            .map(|rdn| format!("{}={}", rdn.attribute, escape_rdn_value(&rdn.value)))
            .collect::<Vec<_>>()
            .join(",");
        let normalized = normalize(&rdns);
        Dn {
            text,
            rdns,
            normalized,
        }
    }
}

fn normalize(rdns: &[Rdn]) -> String {
    rdns.iter()
        .map(|rdn| {
            format!(
                "{}={}",
                rdn.attribute.to_lowercase(),
                escape_rdn_value(&rdn.value.to_lowercase())
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl PartialEq for Dn {
    fn eq(&self, other: &Self) -> bool {
        self.normalized == other.normalized
    }
}

impl Eq for Dn {}

impl std::hash::Hash for Dn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.normalized.hash(state);
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Dn {
    type Err = DnParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dn::parse(s)
    }
}

/// Escapes a value for use in an RDN (RFC 4514 §2.4).
pub fn escape_rdn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (index, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if index == 0 => out.push_str("\\#"),
            ' ' if index == 0 || index == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a value for use inside an LDAP search filter (RFC 4515 §3).
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// Splits on any of `separators` that is not escaped with a backslash or inside double quotes.
fn split_unescaped(text: &str, separators: &[char]) -> Result<Vec<String>, &'static str> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                match chars.next() {
                    Some(next) => current.push(next),
                    None => return Err("it ends with a lone backslash"),
                }
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if !quoted && separators.contains(&c) => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return Err("a quote is not closed");
    }
    parts.push(current);
    Ok(parts)
}

/// Removes RFC 4514 escapes: `\,` and `\2C` both become `,`; hex pairs may spell UTF-8 bytes.
fn unescape_value(raw: &str) -> Result<String, &'static str> {
    // Unescaped trailing spaces are not part of the value; an escaped one (`\ `) is.
    let mut end = raw.len();
    while raw[..end].ends_with(' ') && !raw[..end - 1].ends_with('\\') {
        end -= 1;
    }
    let raw = &raw[..end];
    if raw.starts_with('#') {
        return Err("hex-encoded (#…) values are not supported");
    }
    let raw = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let mut bytes = Vec::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buffer = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        let Some(first) = chars.next() else {
            return Err("it ends with a lone backslash");
        };
        if first.is_ascii_hexdigit() {
            let Some(second) = chars.next().filter(char::is_ascii_hexdigit) else {
                return Err("a \\XX escape is not two hex digits");
            };
            let pair = [first as u8, second as u8];
            let hex = std::str::from_utf8(&pair).map_err(|_| "bad hex escape")?;
            bytes.push(u8::from_str_radix(hex, 16).map_err(|_| "bad hex escape")?);
        } else {
            let mut buffer = [0u8; 4];
            bytes.extend_from_slice(first.encode_utf8(&mut buffer).as_bytes());
        }
    }
    String::from_utf8(bytes).map_err(|_| "escaped bytes are not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(text: &str) -> Dn {
        Dn::parse(text).expect("valid DN")
    }

    #[test]
    fn comparison_ignores_case_and_spacing() {
        assert_eq!(
            dn("OU=Sales,DC=corp,DC=dirsync,DC=test"),
            dn("ou=SALES, dc=Corp,dc=DIRSYNC,dc=test")
        );
        assert_ne!(dn("OU=Sales,DC=corp"), dn("OU=Sale,DC=corp"));
    }

    #[test]
    fn escaped_characters_compare_by_meaning() {
        assert_eq!(
            dn(r"CN=Smith\, John,DC=corp"),
            dn(r"cn=smith\2C john,dc=corp")
        );
        assert_eq!(
            dn(r"CN=Smith\, John,DC=corp").rdn_value(),
            Some("Smith, John")
        );
        assert_eq!(dn(r"CN=caf\C3\A9,DC=x").rdn_value(), Some("café"));
    }

    #[test]
    fn leading_hash_and_special_characters_round_trip() {
        let value = "#hash.user";
        let text = format!("CN={},OU=Corp,DC=corp", escape_rdn_value(value));
        assert_eq!(text, r"CN=\#hash.user,OU=Corp,DC=corp");
        assert_eq!(dn(&text).rdn_value(), Some(value));
        let odd = " a,b+c\"d\\e<f>g;h=i ";
        let text = format!("CN={},DC=corp", escape_rdn_value(odd));
        assert_eq!(dn(&text).rdn_value(), Some(odd));
    }

    #[test]
    fn parent_child_and_within() {
        let paris = dn("OU=Paris,OU=EMEA,OU=Sales,DC=corp,DC=test");
        let emea = paris.parent().expect("has parent");
        assert_eq!(emea, dn("ou=emea,ou=sales,dc=corp,dc=test"));
        assert_eq!(emea.child("OU", "Paris"), paris);
        assert!(paris.is_within(&dn("OU=Sales,DC=CORP,DC=test")));
        assert!(paris.is_within(&paris));
        assert!(!paris.is_within(&dn("OU=Engineering,DC=corp,DC=test")));
        assert!(!dn("DC=test").is_within(&paris));
        assert_eq!(dn("DC=test").parent(), Some(dn("")));
        assert_eq!(dn("").parent(), None);
    }

    #[test]
    fn child_escapes_its_value() {
        let parent = dn("DC=corp");
        let child = parent.child("CN", "Smith, John");
        assert_eq!(child.as_str(), r"CN=Smith\, John,DC=corp");
    }

    #[test]
    fn malformed_dns_are_rejected_with_a_reason() {
        for bad in [
            "OU",
            "OU=Sales,",
            "=x,DC=corp",
            r"CN=a\",
            "CN=\"open",
            "CN=a+SN=b,DC=x",
            "C N=x",
        ] {
            assert!(Dn::parse(bad).is_err(), "{bad} should be rejected");
        }
        let err = Dn::parse("OUSales,DC=corp").expect_err("no '='");
        assert!(err.to_string().contains("OUSales,DC=corp"));
    }

    #[test]
    fn filter_values_are_escaped() {
        assert_eq!(escape_filter_value("a*(b)\\c"), r"a\2a\28b\29\5cc");
        assert_eq!(escape_filter_value("plain.user"), "plain.user");
    }
}
