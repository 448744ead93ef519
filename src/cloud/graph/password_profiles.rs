//! Users' passwords through public Microsoft Graph (README, "Password sync through Microsoft
//! Graph"): `PATCH /users/{id}` with `passwordProfile` and `passwordPolicies`
//! (https://learn.microsoft.com/en-us/graph/api/user-update?view=graph-rest-1.0), in `$batch`es
//! paced like every write. An application may do it only with User.ReadWrite.All (or
//! User-PasswordProfile.ReadWrite.All) and a directory role that may reset passwords.

use serde_json::{Value, json};
use zeroize::Zeroize as _;

use super::{GraphClient, GraphError, GraphRequest, Method};

/// The directory roles that let an application reset a non-administrator's password, from
/// "Microsoft Entra built-in roles" (who can reset passwords). User Administrator is the one
/// setup assigns.
pub const PASSWORD_RESET_ROLES: &[&str] = &[
    "User Administrator",
    "Helpdesk Administrator",
    "Privileged Authentication Administrator",
    "Global Administrator",
];

/// User Administrator's role definition id (the same in every tenant).
pub const USER_ADMINISTRATOR_ROLE_ID: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

/// One user's new password for [`GraphClient::set_passwords`]. A secret: only ever put in the
/// request body, which is overwritten once sent.
pub struct PasswordProfileItem<'a> {
    pub user_id: &'a str,
    pub password: &'a str,
}

impl std::fmt::Debug for PasswordProfileItem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordProfileItem")
            .field("user_id", &self.user_id)
            .field("password", &"***")
            .finish()
    }
}

/// `passwordPolicies` for synced users: AD decides when a password expires; the cloud's own
/// complexity rule stays unless the administrator chose otherwise.
pub fn password_policies(disable_strong_password: bool) -> &'static str {
    if disable_strong_password {
        "DisablePasswordExpiration, DisableStrongPassword"
    } else {
        "DisablePasswordExpiration"
    }
}

impl GraphClient {
    /// Sets each user's password (no change forced at next sign-in) and `policies`. One result
    /// per item, in order; a refusal touches only its own user.
    pub async fn set_passwords(
        &self,
        items: &[PasswordProfileItem<'_>],
        policies: &str,
    ) -> Vec<Result<(), GraphError>> {
        let mut requests: Vec<GraphRequest> = items
            .iter()
            .map(|item| {
                GraphRequest::new(Method::Patch, &["users", item.user_id]).with_body(json!({
                    "passwordProfile": {
                        "password": item.password,
                        "forceChangePasswordNextSignIn": false,
                    },
                    "passwordPolicies": policies,
                }))
            })
            .collect();
        let results = self.batch(&requests).await;
        for request in &mut requests {
            if let Some(Value::String(password)) = request
                .body
                .as_mut()
                .and_then(|body| body.pointer_mut("/passwordProfile/password"))
            {
                password.zeroize();
            }
        }
        results.into_iter().map(|result| result.map(drop)).collect()
    }

    /// Assigns a directory role to a principal, tenant-wide
    /// (https://learn.microsoft.com/en-us/graph/api/rbacapplication-post-roleassignments?view=graph-rest-1.0),
    /// unless it holds it already (Graph refuses a second, identical assignment).
    pub async fn assign_directory_role(
        &self,
        role_definition_id: &str,
        principal_id: &str,
    ) -> Result<(), GraphError> {
        if !self
            .role_assignment_ids(role_definition_id, principal_id)
            .await?
            .is_empty()
        {
            return Ok(());
        }
        let request = GraphRequest::new(
            Method::Post,
            &["roleManagement", "directory", "roleAssignments"],
        )
        .with_body(json!({
            "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
            "roleDefinitionId": role_definition_id,
            "principalId": principal_id,
            "directoryScopeId": "/",
        }));
        match self.send(&request).await {
            // Made meanwhile by someone else: "A conflicting object with one or more of the
            // specified property values is present in the directory."
            Ok(_) | Err(GraphError::Conflict { .. }) => Ok(()),
            Err(GraphError::BadRequest { message, .. })
                if message.contains("conflicting object") =>
            {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// The ids of a principal's assignments of one role.
    async fn role_assignment_ids(
        &self,
        role_definition_id: &str,
        principal_id: &str,
    ) -> Result<Vec<String>, GraphError> {
        let request = GraphRequest::get(&["roleManagement", "directory", "roleAssignments"])
            .with_query(
                "$filter",
                &format!("principalId eq {}", super::odata_string(principal_id)),
            );
        let answer = self.send(&request).await?;
        Ok(answer
            .as_ref()
            .and_then(|answer| answer.get("value"))
            .and_then(Value::as_array)
            .map(|assignments| {
                assignments
                    .iter()
                    .filter(|assignment| {
                        assignment
                            .get("roleDefinitionId")
                            .and_then(Value::as_str)
                            .is_some_and(|role| role.eq_ignore_ascii_case(role_definition_id))
                    })
                    .filter_map(|assignment| assignment.get("id").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Removes a principal's assignments of one role; `Ok(n)`: how many were removed.
    pub async fn revoke_directory_role(
        &self,
        role_definition_id: &str,
        principal_id: &str,
    ) -> Result<usize, GraphError> {
        let ids = self
            .role_assignment_ids(role_definition_id, principal_id)
            .await?;
        for id in &ids {
            let delete = GraphRequest::new(
                Method::Delete,
                &["roleManagement", "directory", "roleAssignments", id],
            );
            match self.send(&delete).await {
                Ok(_) | Err(GraphError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(ids.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_item_never_shows_the_password() {
        let item = PasswordProfileItem {
            user_id: "u1",
            password: "Secret-Value-1",
        };
        assert!(!format!("{item:?}").contains("Secret"));
    }

    #[test]
    fn expiry_is_always_ads_and_complexity_only_when_chosen() {
        assert_eq!(password_policies(false), "DisablePasswordExpiration");
        assert_eq!(
            password_policies(true),
            "DisablePasswordExpiration, DisableStrongPassword"
        );
    }
}
