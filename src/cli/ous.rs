//! `dirsync ous`: the OU tree of a directory.

use std::io::IsTerminal;
use std::time::Duration;

use super::{CliError, OusArgs};
use crate::directory::forest::read_root_dse;
use crate::directory::ou_tree::{OuNode, read_tree};
use crate::directory::{DirectoryConnection, DirectoryTarget, Dn};
use crate::home::Home;
use crate::secret::Secret;
use crate::tls::TlsTrust;

/// The environment variable the directory password is read from.
pub const PASSWORD_VARIABLE: &str = "DIRSYNC_LDAP_PASSWORD";

pub async fn run(args: OusArgs, home: &Home) -> Result<(), CliError> {
    let (server, user) = match (args.server, args.user) {
        (Some(server), Some(user)) => (server, user),
        (Some(_), None) => {
            return Err(CliError::BadInput(
                "--user is required with --server (a UPN such as admin@corp.example.com, DOMAIN\\user or a DN)".to_owned(),
            ));
        }
        (None, _) => {
            return Err(CliError::BadInput(format!(
                "no directory is configured in {}: pass --server URL and --user USER",
                home.config_file.display()
            )));
        }
    };
    if let Some(base) = &args.base {
        Dn::parse(base).map_err(|error| CliError::BadInput(format!("--base: {error}")))?;
    }
    let trust = match (args.ca_file, args.insecure) {
        (Some(path), _) => TlsTrust::CaFile(path),
        (None, true) => {
            eprintln!(
                "dirsync: warning: --insecure: the domain controller's certificate is not verified"
            );
            TlsTrust::Insecure
        }
        (None, false) => TlsTrust::SystemRoots,
    };
    let target = DirectoryTarget::new(&server, trust, Duration::from_secs(args.timeout_secs))?;
    let password = read_password(&user)?;

    let connection = DirectoryConnection::connect_and_bind(&target, &user, &password).await?;
    let base = match args.base {
        Some(base) => base,
        None => read_root_dse(&connection).await?.default_naming_context,
    };
    let tree = read_tree(&connection, &base, args.depth).await?;
    connection.close().await;

    if args.json {
        let document = serde_json::to_string_pretty(&tree)
            .map_err(|error| CliError::Failed(format!("cannot write JSON: {error}")))?;
        println!("{document}");
    } else {
        print!("{}", render_tree(&tree));
    }
    Ok(())
}

/// The password from the environment, or asked for on the terminal without echo.
fn read_password(user: &str) -> Result<Secret, CliError> {
    if let Ok(password) = std::env::var(PASSWORD_VARIABLE) {
        return Ok(Secret::new(password));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::BadInput(format!(
            "no password for {user}: set {PASSWORD_VARIABLE}, or run on a terminal to be asked"
        )));
    }
    rpassword::prompt_password(format!("Password for {user}: "))
        .map(Secret::new)
        .map_err(|error| CliError::BadInput(format!("cannot read the password: {error}")))
}

/// An indented listing: name, kind and DN, children under their parent.
fn render_tree(root: &OuNode) -> String {
    fn render(node: &OuNode, prefix: &str, last: bool, is_root: bool, out: &mut String) {
        let (branch, child_prefix) = if is_root {
            (String::new(), String::new())
        } else if last {
            (format!("{prefix}└─ "), format!("{prefix}   "))
        } else {
            (format!("{prefix}├─ "), format!("{prefix}│  "))
        };
        out.push_str(&format!(
            "{branch}{}  ({})  {}\n",
            node.name,
            node.kind.as_str(),
            node.dn
        ));
        for (index, child) in node.children.iter().enumerate() {
            render(
                child,
                &child_prefix,
                index + 1 == node.children.len(),
                false,
                out,
            );
        }
    }
    let mut out = String::new();
    render(root, "", true, true, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::ou_tree::ContainerKind;

    fn node(name: &str, children: Vec<OuNode>) -> OuNode {
        OuNode {
            dn: format!("OU={name}"),
            name: name.to_owned(),
            kind: ContainerKind::OrganizationalUnit,
            children,
        }
    }

    #[test]
    fn the_listing_draws_branches() {
        let tree = node(
            "root",
            vec![node("A", vec![node("A1", vec![])]), node("B", vec![])],
        );
        assert_eq!(
            render_tree(&tree),
            "root  (organizationalUnit)  OU=root\n\
             ├─ A  (organizationalUnit)  OU=A\n\
             │  └─ A1  (organizationalUnit)  OU=A1\n\
             └─ B  (organizationalUnit)  OU=B\n"
        );
    }
}
