//! The synchronization stage: join each directory object to its cloud object, flow its
//! attributes, validate, and plan exactly which cloud writes a run makes (README, "Syncing"). Pure: no
//! I/O, so a preview is this stage's answer, and every rule is unit-tested here.
//!
//! Joining, for an object the store has no link for yet:
//! 1. hard match: a cloud user whose `onPremisesImmutableId` is the object's anchor;
//! 2. soft match: a cloud object without an immutableId whose SMTP address (or UPN, when enabled)
//!    is the object's primary SMTP address (or UPN); the join stamps the immutableId. A cloud
//!    object that has another immutableId, or is already linked, is an `InvalidSoftMatch` error;
//! 3. groups, which Graph gives no immutableId: only a group dirsync can prove it made, so that a
//!    create whose answer was lost (or whose link a crash kept from being saved) is found again,
//!    not made twice: the store holds a create intent for the object (written before the create
//!    was sent), and the cloud group has the group's mailNickname and the sync app as its owner
//!    (set in the create). Any other cloud group with that mailNickname (a cloud-only team, a
//!    Microsoft 365 group) is never joined: the object is an error that names it (README,
//!    "Joining");
//! 4. otherwise: create.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

use super::addresses::{primary_smtp, smtp_address};
use super::attribute_flow::{CloudShape, TenantDomains, cloud_shape};
use super::validation::{ObjectIssue, Rule, Severity, check_object, find_duplicates};
use crate::cloud::CloudObject;
use crate::directory::Dn;
use crate::directory::objects::{DirectoryObject, ObjectKind};
use crate::guid::Guid;
use crate::rules::SyncRules;
use crate::store::sync_state::Link;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// More deletes than this in one run: none of them is made.
    pub deletion_threshold: usize,
    /// The administrator looked at a stopped run's deletes and confirmed this many: a run with
    /// at most this many deletes makes them, whatever the threshold. More still stop.
    pub confirmed_deletes: Option<usize>,
    /// Soft match on userPrincipalName as well as on the primary SMTP address.
    pub soft_match_upn: bool,
    /// More deletes than this share of the objects dirsync manages (percent): none of them is
    /// made. `None`: only the count holds.
    pub deletion_threshold_percent: Option<u32>,
    /// Users leaving the scope are disabled first and deleted this many days later, unless they
    /// come back (README, "Deletes you can take back"). `None`: deleted at once.
    pub disable_before_delete_days: Option<u32>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            deletion_threshold: 500,
            confirmed_deletes: None,
            soft_match_upn: false,
            deletion_threshold_percent: None,
            disable_before_delete_days: None,
        }
    }
}

/// Everything the stage looks at.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// In-scope objects read this run: every one (full) or the changed ones (delta). System
    /// objects are left out here whatever the caller passes.
    pub objects: &'a [DirectoryObject],
    /// Anchors deleted in AD or moved out of scope.
    pub gone: &'a [Guid],
    /// A full import: a linked object that was not read is gone too.
    pub full: bool,
    pub links: &'a HashMap<Guid, Link>,
    /// What cloud import found (users and groups), for joining objects without a link.
    pub cloud: &'a [CloudObject],
    /// Of those, the groups whose owners include the sync app.
    pub owned_groups: &'a HashSet<String>,
    /// Objects whose create was sent (the store's create intents) and never confirmed.
    pub create_intents: &'a HashSet<Guid>,
    /// Group matches the administrator confirmed: AD group anchor → cloud group id.
    pub confirmed_group_matches: &'a HashMap<Guid, String>,
    /// Users `dirsync push --disable` holds disabled in the cloud while AD has them enabled
    /// (README, "Pushing one user now").
    pub held_disabled: &'a HashSet<Guid>,
    pub domains: &'a TenantDomains,
    /// The sync rules' mappings (README, "Sync rules").
    pub rules: &'a SyncRules,
    /// DNs that name another object's cloud object: with several forests, a person's object in a
    /// later forest names the first forest's (README, "Several forests"). Normalized DN →
    /// anchor.
    pub aliases: &'a HashMap<String, Guid>,
    pub options: &'a PlanOptions,
    /// Now, in Unix milliseconds (when a disabled user's days are up).
    pub now_ms: i64,
}

/// How an object was joined to an existing cloud object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JoinKind {
    HardMatch,
    SoftMatchSmtp,
    SoftMatchUpn,
    /// A group dirsync made, found again (see the module's comment).
    OwnCreate,
    /// A cloud group dirsync did not make, taken over because the administrator confirmed it.
    ConfirmedGroupMatch,
}

/// One property's old and new value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttributeChange {
    pub property: String,
    pub old: Value,
    pub new: Value,
}

/// One write the run makes, in the order the plan lists them.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Create {
        anchor: Guid,
        kind: ObjectKind,
        dn: Dn,
        properties: Map<String, Value>,
    },
    /// Takes over an existing cloud object, then writes what differs (a soft match stamps the
    /// immutableId this way).
    Join {
        anchor: Guid,
        kind: ObjectKind,
        dn: Dn,
        cloud_id: String,
        how: JoinKind,
        changes: Vec<AttributeChange>,
    },
    Update {
        anchor: Guid,
        kind: ObjectKind,
        dn: Dn,
        cloud_id: String,
        changes: Vec<AttributeChange>,
    },
    /// Group membership, by member anchors; resolved to cloud ids at export, after creates.
    Members {
        group: Guid,
        add: Vec<Guid>,
        remove: Vec<Guid>,
    },
    /// A user's manager (None: remove it).
    Manager { user: Guid, manager: Option<Guid> },
    Delete {
        anchor: Guid,
        kind: ObjectKind,
        dn: Dn,
        cloud_id: String,
    },
    /// A user leaving the scope, with disable-before-delete on: sign-in blocked and sessions
    /// revoked; deleted when its days are up, enabled again if it comes back first.
    Disable {
        anchor: Guid,
        dn: Dn,
        cloud_id: String,
    },
}

impl Operation {
    /// How much this operation takes away, as the deletion threshold counts: a delete or a
    /// disable is one, a membership change one per member removed.
    pub fn removals(&self) -> usize {
        match self {
            Operation::Delete { .. } | Operation::Disable { .. } => 1,
            Operation::Members { remove, .. } => remove.len(),
            _ => 0,
        }
    }
}

/// An object that is not exported (errors) or is exported with a remark (warnings).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectReport {
    pub anchor: Guid,
    pub kind: ObjectKind,
    pub dn: Dn,
    pub issues: Vec<ObjectIssue>,
}

/// The stage's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub operations: Vec<Operation>,
    pub errors: Vec<ObjectReport>,
    pub warnings: Vec<ObjectReport>,
    /// Linked objects read this run that need no write.
    pub unchanged: usize,
    /// Deletes, disables and member removals not planned because there were more than the
    /// threshold, for the administrator to look at.
    pub withheld_deletes: Vec<Operation>,
    /// Disabled users whose days are not up yet: (anchor, when they are deleted, Unix ms).
    pub awaiting_delete: Vec<(Guid, i64)>,
}

impl Plan {
    pub fn count(&self, matches: impl Fn(&Operation) -> bool) -> usize {
        self.operations
            .iter()
            .filter(|operation| matches(operation))
            .count()
    }
}

/// What the reference pass needs of one exported object, kept in place of its whole cloud shape
/// until every object has been planned.
struct References<'a> {
    anchor: Guid,
    wanted: WantedReferences,
    link: Option<&'a Link>,
}

/// The references an object wants, resolved to anchors (those that do not resolve are left out).
/// Failed objects are not filtered out yet: an object later in the run may still fail.
enum WantedReferences {
    Members(Vec<Guid>),
    Manager(Option<Guid>),
}

/// Plans a run.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let objects: Vec<&DirectoryObject> = input
        .objects
        .iter()
        .filter(|object| !object.is_system_object())
        .collect();
    let mut plan = Plan::default();
    let mut duplicates = find_duplicates(objects.iter().copied());
    let matcher = Matcher::new(input);
    // Member and manager DNs resolve to anchors through this run's objects and the links.
    let mut anchor_by_dn: HashMap<&str, Guid> = input
        .links
        .values()
        .map(|link| (link.dn.normalized(), link.anchor))
        .collect();
    for object in &objects {
        anchor_by_dn.insert(object.dn.normalized(), object.anchor);
    }
    for (dn, anchor) in input.aliases {
        anchor_by_dn.insert(dn.as_str(), *anchor);
    }
    let resolve = |dn: &Dn| anchor_by_dn.get(dn.normalized()).copied();

    let mut references = Vec::new();
    let mut claimed: HashSet<&str> = HashSet::new();
    for (index, object) in objects.iter().enumerate() {
        let CloudShape {
            mut properties,
            manager,
            members,
            issues: shape_issues,
        } = cloud_shape(object, input.domains, input.rules);
        if object.kind == ObjectKind::User && input.held_disabled.contains(&object.anchor) {
            properties.insert("accountEnabled".to_owned(), Value::Bool(false));
        }
        let mut issues = check_object(object);
        issues.extend(duplicates.remove(&index).unwrap_or_default());
        issues.extend(shape_issues);
        let report = |issues: Vec<ObjectIssue>| ObjectReport {
            anchor: object.anchor,
            kind: object.kind,
            dn: object.dn.clone(),
            issues,
        };
        let link = input.links.get(&object.anchor);
        let operation = match link {
            Some(link) => {
                let changes = changes(&link.exported, properties);
                if changes.is_empty() {
                    None
                } else {
                    Some(Operation::Update {
                        anchor: object.anchor,
                        kind: object.kind,
                        dn: object.dn.clone(),
                        cloud_id: link.cloud_id.clone(),
                        changes,
                    })
                }
            }
            None => match matcher.find(object, &properties) {
                // Two objects of one run may find the same cloud object: the first one joins.
                Ok(Some((cloud, how))) if claimed.insert(cloud.id.as_str()) => {
                    Some(Operation::Join {
                        anchor: object.anchor,
                        kind: object.kind,
                        dn: object.dn.clone(),
                        cloud_id: cloud.id.clone(),
                        how,
                        changes: changes(&cloud.properties, properties),
                    })
                }
                Ok(Some((cloud, _))) => {
                    issues.push(invalid_soft_match(cloud, "another object in this run"));
                    None
                }
                Ok(None) => Some(Operation::Create {
                    anchor: object.anchor,
                    kind: object.kind,
                    dn: object.dn.clone(),
                    properties: without_nulls(properties),
                }),
                Err(issue) => {
                    issues.push(issue);
                    None
                }
            },
        };
        let (errors, warnings): (Vec<_>, Vec<_>) = issues
            .into_iter()
            .partition(|issue| issue.severity == Severity::Error);
        if !warnings.is_empty() {
            plan.warnings.push(report(warnings));
        }
        if !errors.is_empty() {
            plan.errors.push(report(errors));
            continue;
        }
        match operation {
            Some(operation) => plan.operations.push(operation),
            None => plan.unchanged += 1,
        }
        let wanted = match object.kind {
            ObjectKind::Group => {
                WantedReferences::Members(members.iter().filter_map(resolve).collect())
            }
            ObjectKind::User => WantedReferences::Manager(manager.as_ref().and_then(resolve)),
        };
        references.push(References {
            anchor: object.anchor,
            wanted,
            link,
        });
    }

    // References after the objects they point at, so that export can resolve new ids. Only now
    // are all the failed objects known, and nothing may point at one of them.
    let failed: HashSet<Guid> = plan.errors.iter().map(|report| report.anchor).collect();
    let exported = |anchor: &Guid| !failed.contains(anchor);
    for References {
        anchor,
        wanted,
        link,
    } in references
    {
        match wanted {
            WantedReferences::Members(members) => {
                let wanted: BTreeSet<Guid> = members.into_iter().filter(exported).collect();
                let empty = BTreeSet::new();
                let had = link.map_or(&empty, |link| &link.members);
                let add: Vec<Guid> = wanted.difference(had).copied().collect();
                let remove: Vec<Guid> = had.difference(&wanted).copied().collect();
                if !add.is_empty() || !remove.is_empty() {
                    plan.operations.push(Operation::Members {
                        group: anchor,
                        add,
                        remove,
                    });
                }
            }
            WantedReferences::Manager(manager) => {
                let wanted = manager.filter(exported);
                let had = link.and_then(|link| link.manager);
                if wanted != had {
                    plan.operations.push(Operation::Manager {
                        user: anchor,
                        manager: wanted,
                    });
                }
            }
        }
    }

    // Deletes last: AD deletes and moves out of scope, and on a full import every linked object
    // that was not read.
    let mut gone: BTreeSet<Guid> = input.gone.iter().copied().collect();
    if input.full {
        let read: HashSet<Guid> = objects.iter().map(|object| object.anchor).collect();
        gone.extend(input.links.keys().filter(|anchor| !read.contains(anchor)));
    }
    let mut deletes: Vec<Operation> = Vec::new();
    for link in gone.iter().filter_map(|anchor| input.links.get(anchor)) {
        let delete = Operation::Delete {
            anchor: link.anchor,
            kind: link.kind,
            dn: link.dn.clone(),
            cloud_id: link.cloud_id.clone(),
        };
        let days = input.options.disable_before_delete_days;
        match (link.kind, days, link.disabled_at) {
            (ObjectKind::User, Some(_), None) => deletes.push(Operation::Disable {
                anchor: link.anchor,
                dn: link.dn.clone(),
                cloud_id: link.cloud_id.clone(),
            }),
            (ObjectKind::User, Some(days), Some(disabled_at)) => {
                let due = disabled_at + i64::from(days) * DAY_MS;
                if input.now_ms >= due {
                    deletes.push(delete);
                } else {
                    plan.awaiting_delete.push((link.anchor, due));
                }
            }
            _ => deletes.push(delete),
        }
    }

    // The threshold counts every removal: deletes, disables and members removed from groups.
    let removals: usize = plan
        .operations
        .iter()
        .chain(&deletes)
        .map(Operation::removals)
        .sum();
    let managed = input.links.len().max(1);
    let over_percent = input
        .options
        .deletion_threshold_percent
        .is_some_and(|percent| removals * 100 > managed * percent as usize);
    let confirmed = input
        .options
        .confirmed_deletes
        .is_some_and(|confirmed| removals <= confirmed);
    if (removals > input.options.deletion_threshold || over_percent) && !confirmed {
        // Member additions still go; their removals wait with the deletes.
        for operation in &mut plan.operations {
            if let Operation::Members { group, remove, .. } = operation
                && !remove.is_empty()
            {
                plan.withheld_deletes.push(Operation::Members {
                    group: *group,
                    add: Vec::new(),
                    remove: std::mem::take(remove),
                });
            }
        }
        plan.operations.retain(|operation| {
            !matches!(operation, Operation::Members { add, remove, .. } if add.is_empty() && remove.is_empty())
        });
        plan.withheld_deletes.extend(deletes);
    } else {
        plan.operations.extend(deletes);
    }
    plan
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The cloud users that joins of this plan would take over (hard or soft match): the ones whose
/// directory roles must be read before export.
pub fn user_join_targets(plan: &Plan) -> Vec<String> {
    plan.operations
        .iter()
        .filter_map(|operation| match operation {
            Operation::Join {
                kind: ObjectKind::User,
                cloud_id,
                ..
            } => Some(cloud_id.clone()),
            _ => None,
        })
        .collect()
}

/// Turns joins onto cloud users that hold directory roles into errors (Entra never matches an
/// on-premises user to a cloud administrator). `roles` has each join target's roles; a target
/// missing from it could not be checked and is refused too. The object's member and manager
/// writes need its link, which it does not get: export skips them.
pub fn refuse_privileged_joins(plan: &mut Plan, roles: &HashMap<String, Vec<String>>) {
    let mut kept = Vec::with_capacity(plan.operations.len());
    for operation in std::mem::take(&mut plan.operations) {
        let Operation::Join {
            anchor,
            kind: ObjectKind::User,
            dn,
            cloud_id,
            how,
            ..
        } = &operation
        else {
            kept.push(operation);
            continue;
        };
        let held = match roles.get(cloud_id) {
            Some(held) if held.is_empty() => {
                kept.push(operation);
                continue;
            }
            Some(held) => held.clone(),
            None => Vec::new(),
        };
        let attribute = match how {
            JoinKind::HardMatch => "onPremisesImmutableId",
            JoinKind::SoftMatchUpn => "userPrincipalName",
            JoinKind::SoftMatchSmtp | JoinKind::OwnCreate | JoinKind::ConfirmedGroupMatch => "mail",
        };
        plan.errors.push(ObjectReport {
            anchor: *anchor,
            kind: ObjectKind::User,
            dn: dn.clone(),
            issues: vec![ObjectIssue {
                attribute: attribute.to_owned(),
                value: cloud_id.clone(),
                rule: Rule::PrivilegedCloudAccount {
                    cloud_id: cloud_id.clone(),
                    roles: held,
                },
                severity: Severity::Error,
            }],
        });
    }
    plan.operations = kept;
}

/// The properties whose wanted value differs from the known one. Takes the wanted properties, so
/// that a change moves its name and new value instead of copying them.
fn changes(known: &Map<String, Value>, wanted: Map<String, Value>) -> Vec<AttributeChange> {
    wanted
        .into_iter()
        .filter_map(|(property, new)| {
            let old = known.get(&property).cloned().unwrap_or(Value::Null);
            let same = old == new || (is_empty(&old) && is_empty(&new));
            (!same).then_some(AttributeChange { property, old, new })
        })
        .collect()
}

fn is_empty(value: &Value) -> bool {
    super::attribute_flow::is_empty_value(value)
}

/// A create sends only the values there are.
fn without_nulls(mut properties: Map<String, Value>) -> Map<String, Value> {
    properties.retain(|_, value| !is_empty(value));
    properties
}

fn invalid_soft_match(cloud: &CloudObject, holder: &str) -> ObjectIssue {
    ObjectIssue {
        attribute: "proxyAddresses".to_owned(),
        value: cloud.id.clone(),
        rule: Rule::InvalidSoftMatch {
            cloud_id: cloud.id.clone(),
            holder: holder.to_owned(),
        },
        severity: Severity::Error,
    }
}

/// Indexes of the cloud objects for joining.
struct Matcher<'a> {
    by_immutable_id: HashMap<&'a str, &'a CloudObject>,
    by_smtp: HashMap<String, &'a CloudObject>,
    by_upn: HashMap<String, &'a CloudObject>,
    groups_by_nickname: HashMap<String, Vec<&'a CloudObject>>,
    linked: HashSet<&'a str>,
    owned_groups: &'a HashSet<String>,
    create_intents: &'a HashSet<Guid>,
    confirmed_group_matches: &'a HashMap<Guid, String>,
    soft_match_upn: bool,
}

impl<'a> Matcher<'a> {
    fn new(input: &PlanInput<'a>) -> Self {
        let mut matcher = Matcher {
            by_immutable_id: HashMap::new(),
            by_smtp: HashMap::new(),
            by_upn: HashMap::new(),
            groups_by_nickname: HashMap::new(),
            linked: input
                .links
                .values()
                .map(|link| link.cloud_id.as_str())
                .collect(),
            owned_groups: input.owned_groups,
            create_intents: input.create_intents,
            confirmed_group_matches: input.confirmed_group_matches,
            soft_match_upn: input.options.soft_match_upn,
        };
        for object in input.cloud {
            if let Some(id) = object.immutable_id() {
                matcher.by_immutable_id.insert(id, object);
            }
            for address in object.strings("proxyAddresses") {
                if let Some(smtp) = smtp_address(address) {
                    matcher.by_smtp.insert(smtp.to_lowercase(), object);
                }
            }
            if let Some(mail) = object.string("mail") {
                matcher.by_smtp.entry(mail.to_lowercase()).or_insert(object);
            }
            if let Some(upn) = object.string("userPrincipalName") {
                matcher.by_upn.insert(upn.to_lowercase(), object);
            }
            if object.kind == ObjectKind::Group
                && let Some(nickname) = object.string("mailNickname")
            {
                matcher
                    .groups_by_nickname
                    .entry(nickname.to_lowercase())
                    .or_default()
                    .push(object);
            }
        }
        matcher
    }

    /// The cloud object to join, `None` to create, or why neither is allowed.
    fn find(
        &self,
        object: &DirectoryObject,
        properties: &Map<String, Value>,
    ) -> Result<Option<(&'a CloudObject, JoinKind)>, ObjectIssue> {
        let immutable_id = object.immutable_id();
        if let Some(cloud) = self.by_immutable_id.get(immutable_id.as_str()) {
            return Ok(Some((cloud, JoinKind::HardMatch)));
        }
        if object.kind == ObjectKind::Group {
            return self.find_group(object, properties);
        }
        let smtp = primary_smtp(object).or_else(|| object.first("mail"));
        let candidates = [
            (
                smtp.and_then(|smtp| self.by_smtp.get(&smtp.to_lowercase())),
                JoinKind::SoftMatchSmtp,
            ),
            (
                object
                    .first("userPrincipalName")
                    .filter(|_| self.soft_match_upn)
                    .and_then(|upn| self.by_upn.get(&upn.to_lowercase())),
                JoinKind::SoftMatchUpn,
            ),
        ];
        for (found, how) in candidates {
            let Some(cloud) = found else { continue };
            if let Some(other) = cloud.immutable_id() {
                return Err(invalid_soft_match(
                    cloud,
                    &format!("the on-premises object with immutableId {other}"),
                ));
            }
            if self.linked.contains(cloud.id.as_str()) {
                return Err(invalid_soft_match(cloud, "another synchronized object"));
            }
            return Ok(Some((cloud, how)));
        }
        Ok(None)
    }

    /// The group this object's lost create made, `None` to create, or the cloud group that has
    /// its mailNickname and is not provably ours.
    fn find_group(
        &self,
        object: &DirectoryObject,
        properties: &Map<String, Value>,
    ) -> Result<Option<(&'a CloudObject, JoinKind)>, ObjectIssue> {
        let Some(nickname) = properties.get("mailNickname").and_then(Value::as_str) else {
            return Ok(None);
        };
        let candidates: Vec<&CloudObject> = self
            .groups_by_nickname
            .get(&nickname.to_lowercase())
            .into_iter()
            .flatten()
            .copied()
            .filter(|cloud| !self.linked.contains(cloud.id.as_str()))
            .collect();
        let ours = |cloud: &CloudObject| {
            self.create_intents.contains(&object.anchor)
                && self.owned_groups.contains(&cloud.id)
                && !cloud.is_microsoft_365_group()
        };
        if let Some(cloud) = candidates.iter().find(|cloud| ours(cloud)) {
            return Ok(Some((cloud, JoinKind::OwnCreate)));
        }
        let confirmed = self.confirmed_group_matches.get(&object.anchor);
        if let Some(cloud) = candidates.iter().find(|cloud| confirmed == Some(&cloud.id)) {
            return Ok(Some((cloud, JoinKind::ConfirmedGroupMatch)));
        }
        match candidates.first() {
            None => Ok(None),
            Some(cloud) => Err(ObjectIssue {
                attribute: "mailNickname".to_owned(),
                value: nickname.to_owned(),
                rule: Rule::GroupNotOurs {
                    cloud_id: cloud.id.clone(),
                    display_name: cloud.string("displayName").unwrap_or_default().to_owned(),
                    microsoft_365: cloud.is_microsoft_365_group(),
                },
                severity: Severity::Error,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cloud::ObjectKind;

    fn guid(n: u8) -> Guid {
        Guid([n; 16])
    }

    fn user(n: u8, name: &str) -> DirectoryObject {
        let attributes: &[(&str, String)] = &[
            ("userPrincipalName", format!("{name}@contoso.test")),
            ("mail", format!("{name}@contoso.test")),
            ("proxyAddresses", format!("SMTP:{name}@contoso.test")),
            ("displayName", format!("User {name}")),
            ("sAMAccountName", name.to_owned()),
            ("userAccountControl", "512".to_owned()),
        ];
        DirectoryObject {
            anchor: guid(n),
            dn: Dn::parse(&format!("CN={name},OU=Corp,DC=corp,DC=test")).expect("valid"),
            kind: ObjectKind::User,
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), vec![v.clone()]))
                .collect(),
            object_sid: None,
            problems: Vec::new(),
        }
    }

    fn group(n: u8, name: &str, members: &[&DirectoryObject]) -> DirectoryObject {
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert("name".to_owned(), vec![name.to_owned()]);
        attributes.insert("sAMAccountName".to_owned(), vec![name.to_lowercase()]);
        attributes.insert("groupType".to_owned(), vec!["-2147483646".to_owned()]);
        attributes.insert(
            "member".to_owned(),
            members.iter().map(|m| m.dn.to_string()).collect(),
        );
        DirectoryObject {
            anchor: guid(n),
            dn: Dn::parse(&format!("CN={name},OU=Groups,DC=corp,DC=test")).expect("valid"),
            kind: ObjectKind::Group,
            attributes,
            object_sid: None,
            problems: Vec::new(),
        }
    }

    fn domains() -> TenantDomains {
        TenantDomains {
            verified: vec!["contoso.test".to_owned()],
            initial: "contoso.onmicrosoft.com".to_owned(),
        }
    }

    fn link(object: &DirectoryObject, cloud_id: &str) -> Link {
        Link {
            anchor: object.anchor,
            kind: object.kind,
            dn: object.dn.clone(),
            cloud_id: cloud_id.to_owned(),
            exported: cloud_shape(object, &domains(), &SyncRules::default()).properties,
            members: BTreeSet::new(),
            manager: None,
            disabled_at: None,
        }
    }

    fn cloud_user(id: &str, properties: Value) -> CloudObject {
        CloudObject {
            id: id.to_owned(),
            kind: ObjectKind::User,
            properties: match properties {
                Value::Object(properties) => properties,
                other => panic!("an object, not {other}"),
            },
        }
    }

    fn run(
        objects: &[DirectoryObject],
        gone: &[Guid],
        full: bool,
        links: &[Link],
        cloud: &[CloudObject],
        options: &PlanOptions,
    ) -> Plan {
        run_with_intents(objects, links, cloud, (&[], &[]), (gone, full), options)
    }

    /// `(owned groups, create intents)`, `(gone, full)`.
    fn run_with_intents(
        objects: &[DirectoryObject],
        links: &[Link],
        cloud: &[CloudObject],
        (owned, intents): (&[&str], &[Guid]),
        (gone, full): (&[Guid], bool),
        options: &PlanOptions,
    ) -> Plan {
        let links: HashMap<Guid, Link> = links
            .iter()
            .map(|link| (link.anchor, link.clone()))
            .collect();
        plan(&PlanInput {
            objects,
            gone,
            full,
            links: &links,
            cloud,
            owned_groups: &owned.iter().map(|id| (*id).to_owned()).collect(),
            create_intents: &intents.iter().copied().collect(),
            confirmed_group_matches: &HashMap::new(),
            held_disabled: &HashSet::new(),
            domains: &domains(),
            rules: &SyncRules::default(),
            aliases: &HashMap::new(),
            options,
            now_ms: NOW,
        })
    }

    /// The tests' "now".
    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn new_objects_are_created_and_system_objects_never() {
        let ann = user(1, "ann");
        let mut msol = user(2, "MSOL_0123456789ab");
        msol.attributes.insert(
            "sAMAccountName".to_owned(),
            vec!["MSOL_0123456789ab".to_owned()],
        );
        let plan = run(&[ann, msol], &[], true, &[], &[], &PlanOptions::default());
        assert_eq!(plan.operations.len(), 1);
        let Operation::Create {
            anchor, properties, ..
        } = &plan.operations[0]
        else {
            panic!("a create: {plan:?}");
        };
        assert_eq!(*anchor, guid(1));
        assert_eq!(properties["userPrincipalName"], "ann@contoso.test");
        assert!(!properties.contains_key("department"), "no nulls on create");
    }

    #[test]
    fn a_linked_object_updates_only_what_changed() {
        let ann = user(1, "ann");
        let known = link(&ann, "cloud-ann");
        let mut changed = ann.clone();
        changed
            .attributes
            .insert("title".to_owned(), vec!["Buyer".to_owned()]);
        let plan = run(
            &[changed],
            &[],
            false,
            std::slice::from_ref(&known),
            &[],
            &PlanOptions::default(),
        );
        assert_eq!(
            plan.operations,
            [Operation::Update {
                anchor: guid(1),
                kind: ObjectKind::User,
                dn: ann.dn.clone(),
                cloud_id: "cloud-ann".to_owned(),
                changes: vec![AttributeChange {
                    property: "jobTitle".to_owned(),
                    old: Value::Null,
                    new: json!("Buyer")
                }],
            }]
        );
        let plan = run(&[ann], &[], false, &[known], &[], &PlanOptions::default());
        assert!(plan.operations.is_empty());
        assert_eq!(plan.unchanged, 1);
    }

    #[test]
    fn a_hard_match_joins_instead_of_creating() {
        let ann = user(1, "ann");
        let cloud = cloud_user(
            "c1",
            json!({"onPremisesImmutableId": ann.immutable_id(), "userPrincipalName": "ann@contoso.test", "displayName": "User ann"}),
        );
        let plan = run(&[ann], &[], true, &[], &[cloud], &PlanOptions::default());
        let Operation::Join {
            how,
            cloud_id,
            changes,
            ..
        } = &plan.operations[0]
        else {
            panic!("a join: {plan:?}");
        };
        assert_eq!((*how, cloud_id.as_str()), (JoinKind::HardMatch, "c1"));
        assert!(
            changes
                .iter()
                .all(|change| change.property != "displayName"),
            "{changes:?}"
        );
        assert!(
            changes.iter().any(|change| change.property == "mail"),
            "{changes:?}"
        );
    }

    #[test]
    fn a_soft_match_stamps_the_immutable_id_and_a_claimed_target_is_an_error() {
        let ann = user(1, "ann");
        let bob = user(2, "bob");
        let cloud = [
            cloud_user(
                "c-ann",
                json!({"mail": "ann@contoso.test", "proxyAddresses": ["SMTP:ann@contoso.test"]}),
            ),
            cloud_user(
                "c-bob",
                json!({"proxyAddresses": ["smtp:BOB@contoso.test"], "onPremisesImmutableId": "somebody-else"}),
            ),
        ];
        let plan = run(&[ann, bob], &[], true, &[], &cloud, &PlanOptions::default());
        let Operation::Join { how, changes, .. } = &plan.operations[0] else {
            panic!("a join: {plan:?}");
        };
        assert_eq!(*how, JoinKind::SoftMatchSmtp);
        assert!(
            changes
                .iter()
                .any(|c| c.property == "onPremisesImmutableId" && c.old.is_null())
        );
        assert_eq!(plan.errors.len(), 1);
        assert_eq!(plan.errors[0].anchor, guid(2));
        let issue = &plan.errors[0].issues[0];
        assert!(
            matches!(&issue.rule, Rule::InvalidSoftMatch { cloud_id, .. } if cloud_id == "c-bob")
        );
        assert!(
            issue.hint().contains("immutableId somebody-else"),
            "{}",
            issue.hint()
        );
    }

    #[test]
    fn joins_onto_cloud_administrators_or_unchecked_users_become_errors() {
        let [ann, bob, cid] = [user(1, "ann"), user(2, "bob"), user(3, "cid")];
        let cloud: Vec<CloudObject> = ["ann", "bob", "cid"]
            .iter()
            .map(|name| {
                cloud_user(
                    &format!("c-{name}"),
                    json!({"proxyAddresses": [format!("SMTP:{name}@contoso.test")]}),
                )
            })
            .collect();
        let mut plan = run(
            &[ann, bob, cid],
            &[],
            true,
            &[],
            &cloud,
            &PlanOptions::default(),
        );
        assert_eq!(user_join_targets(&plan), ["c-ann", "c-bob", "c-cid"]);
        // ann holds no role; bob is a Global Administrator; cid's roles could not be read.
        let roles = HashMap::from([
            ("c-ann".to_owned(), Vec::new()),
            ("c-bob".to_owned(), vec!["Global Administrator".to_owned()]),
        ]);
        refuse_privileged_joins(&mut plan, &roles);
        assert!(
            matches!(&plan.operations[..], [Operation::Join { cloud_id, .. }] if cloud_id == "c-ann"),
            "{plan:?}"
        );
        let refused: Vec<(&Guid, &Rule)> = plan
            .errors
            .iter()
            .map(|report| (&report.anchor, &report.issues[0].rule))
            .collect();
        assert!(
            matches!(refused[0], (anchor, Rule::PrivilegedCloudAccount { roles, .. }) if *anchor == guid(2) && roles == &["Global Administrator"])
        );
        assert!(
            matches!(refused[1], (anchor, Rule::PrivilegedCloudAccount { roles, .. }) if *anchor == guid(3) && roles.is_empty())
        );
        assert!(
            plan.errors[1].issues[0]
                .hint()
                .contains("RoleManagement.Read.Directory")
        );
    }

    #[test]
    fn groups_get_members_after_their_targets_and_only_groups_dirsync_made_are_found_again() {
        let ann = user(1, "ann");
        let bob = user(2, "bob");
        let finance = group(10, "Finance", &[&ann, &bob]);
        let plan = run(
            &[ann.clone(), bob.clone(), finance.clone()],
            &[],
            true,
            &[],
            &[],
            &PlanOptions::default(),
        );
        let last = plan.operations.last().expect("operations");
        assert_eq!(
            last,
            &Operation::Members {
                group: guid(10),
                add: vec![guid(1), guid(2)],
                remove: vec![]
            }
        );

        // A run that created the group but crashed before saving its link finds it again, and
        // only then: its intent is kept and the sync app owns the group.
        let group = |id: &str, group_types: &[&str]| {
            CloudObject {
            id: id.to_owned(),
            kind: ObjectKind::Group,
            properties: json!({"mailNickname": "finance", "displayName": "Finance", "securityEnabled": true, "mailEnabled": false, "groupTypes": group_types})
                .as_object()
                .expect("object")
                .clone(),
        }
        };
        let links = [link(&ann, "c1"), link(&bob, "c2")];
        let finance = [finance];
        let plan_for = |cloud: &[CloudObject], owned: &[&str], intents: &[Guid]| {
            run_with_intents(
                &finance,
                &links,
                cloud,
                (owned, intents),
                (&[], false),
                &PlanOptions::default(),
            )
        };
        let ours = plan_for(&[group("g1", &[])], &["g1"], &[guid(10)]);
        assert!(
            matches!(&ours.operations[0], Operation::Join { how: JoinKind::OwnCreate, cloud_id, .. } if cloud_id == "g1"),
            "{ours:?}"
        );
        // Without the proof, a group of that nickname is never joined (nor created beside it):
        // the object is an error naming it.
        for (cloud, owned, intents, microsoft_365) in [
            (group("g2", &[]), &[][..], &[guid(10)][..], false),
            (group("g2", &[]), &["g2"][..], &[][..], false),
            (
                group("g2", &["Unified"]),
                &["g2"][..],
                &[guid(10)][..],
                true,
            ),
        ] {
            let plan = plan_for(&[cloud], owned, intents);
            assert!(plan.operations.is_empty(), "{plan:?}");
            assert!(
                matches!(
                    &plan.errors[0].issues[0].rule,
                    Rule::GroupNotOurs { cloud_id, microsoft_365: m365, .. }
                        if cloud_id == "g2" && *m365 == microsoft_365
                ),
                "{plan:?}"
            );
        }
    }

    #[test]
    fn deletes_come_last_and_stop_at_the_threshold() {
        let objects: Vec<DirectoryObject> = (1..=5).map(|n| user(n, &format!("u{n}"))).collect();
        let links: Vec<Link> = objects
            .iter()
            .map(|o| link(o, &format!("c{}", o.anchor.0[0])))
            .collect();
        // A full import that read only the first two: three deletes.
        let options = PlanOptions {
            deletion_threshold: 3,
            ..PlanOptions::default()
        };
        let plan = run(&objects[..2], &[], true, &links, &[], &options);
        assert_eq!(plan.count(|o| matches!(o, Operation::Delete { .. })), 3);
        assert_eq!(plan.unchanged, 2);
        // One more than the threshold: none.
        let options = PlanOptions {
            deletion_threshold: 2,
            ..PlanOptions::default()
        };
        let plan = run(&objects[..2], &[], true, &links, &[], &options);
        assert_eq!(plan.count(|o| matches!(o, Operation::Delete { .. })), 0);
        assert_eq!(plan.withheld_deletes.len(), 3);
        // The administrator confirmed three deletes: they are made. Confirming fewer than the
        // run would make stops it again.
        let confirmed = |count| PlanOptions {
            deletion_threshold: 2,
            confirmed_deletes: Some(count),
            ..PlanOptions::default()
        };
        let plan = run(&objects[..2], &[], true, &links, &[], &confirmed(3));
        assert_eq!(plan.count(|o| matches!(o, Operation::Delete { .. })), 3);
        assert!(plan.withheld_deletes.is_empty());
        let plan = run(&objects[..2], &[], true, &links, &[], &confirmed(2));
        assert_eq!(plan.count(|o| matches!(o, Operation::Delete { .. })), 0);
        assert_eq!(plan.withheld_deletes.len(), 3);
        // A delta run deletes only what it was told is gone.
        let plan = run(&[], &[guid(4)], false, &links, &[], &PlanOptions::default());
        assert_eq!(plan.operations.len(), 1);
        assert!(
            matches!(&plan.operations[0], Operation::Delete { cloud_id, .. } if cloud_id == "c4")
        );
    }

    #[test]
    fn a_percentage_threshold_counts_member_removals_too() {
        // Ten users in a group; three leave AD: 30 % of what dirsync manages is removed (the
        // three users, and three members of the group).
        let users: Vec<DirectoryObject> = (1..=10).map(|n| user(n, &format!("u{n}"))).collect();
        let stay: Vec<&DirectoryObject> = users[..7].iter().collect();
        let team = group(20, "team", &stay);
        let mut links: Vec<Link> = users
            .iter()
            .map(|o| link(o, &format!("c{}", o.anchor.0[0])))
            .collect();
        let mut team_link = link(&team, "c-team");
        team_link.members = users.iter().map(|user| user.anchor).collect();
        links.push(team_link);
        let mut objects = users[..7].to_vec();
        objects.push(team);
        let percent = |percent| PlanOptions {
            deletion_threshold_percent: Some(percent),
            ..PlanOptions::default()
        };
        // 6 removals of 11 managed objects: more than 50 %.
        let plan = run(&objects, &[], true, &links, &[], &percent(50));
        assert_eq!(
            plan.withheld_deletes
                .iter()
                .map(Operation::removals)
                .sum::<usize>(),
            6
        );
        assert!(
            plan.operations.iter().all(|o| o.removals() == 0),
            "{plan:?}"
        );
        // Within 60 %: made.
        let plan = run(&objects, &[], true, &links, &[], &percent(60));
        assert!(plan.withheld_deletes.is_empty());
        assert_eq!(
            plan.operations
                .iter()
                .map(Operation::removals)
                .sum::<usize>(),
            6
        );
    }

    #[test]
    fn users_leaving_the_scope_are_disabled_then_deleted_or_enabled_again() {
        let ann = user(1, "ann");
        let mut ann_link = link(&ann, "c1");
        let days = PlanOptions {
            disable_before_delete_days: Some(7),
            ..PlanOptions::default()
        };
        let run_at = |link: &Link, objects: &[DirectoryObject], gone: &[Guid], now: i64| {
            let links = HashMap::from([(link.anchor, link.clone())]);
            plan(&PlanInput {
                objects,
                gone,
                full: false,
                links: &links,
                cloud: &[],
                owned_groups: &HashSet::new(),
                create_intents: &HashSet::new(),
                confirmed_group_matches: &HashMap::new(),
                held_disabled: &HashSet::new(),
                domains: &domains(),
                rules: &SyncRules::default(),
                aliases: &HashMap::new(),
                options: &days,
                now_ms: now,
            })
        };
        // Out of scope: disabled, not deleted.
        let plan = run_at(&ann_link, &[], &[guid(1)], NOW);
        assert!(
            matches!(&plan.operations[..], [Operation::Disable { cloud_id, .. }] if cloud_id == "c1"),
            "{plan:?}"
        );
        // Export kept it disabled; six days later it still waits.
        ann_link.disabled_at = Some(NOW);
        ann_link
            .exported
            .insert("accountEnabled".to_owned(), json!(false));
        let six_days = NOW + 6 * 24 * 3_600_000;
        let plan = run_at(&ann_link, &[], &[guid(1)], six_days);
        assert!(plan.operations.is_empty(), "{plan:?}");
        assert_eq!(plan.awaiting_delete, [(guid(1), NOW + 7 * 24 * 3_600_000)]);
        // Back in scope within the days: enabled again, same cloud object.
        let plan = run_at(&ann_link, std::slice::from_ref(&ann), &[], six_days);
        assert!(
            matches!(&plan.operations[..], [Operation::Update { cloud_id, changes, .. }]
                if cloud_id == "c1" && changes.iter().any(|c| c.property == "accountEnabled" && c.new == json!(true))),
            "{plan:?}"
        );
        // Seven days after it was disabled: deleted.
        let plan = run_at(&ann_link, &[], &[guid(1)], NOW + 7 * 24 * 3_600_000);
        assert!(
            matches!(&plan.operations[..], [Operation::Delete { cloud_id, .. }] if cloud_id == "c1"),
            "{plan:?}"
        );
        // Groups have no sign-in to block: deleted at once.
        let team = group(20, "team", &[]);
        let plan = run_at(&link(&team, "c20"), &[], &[guid(20)], NOW);
        assert!(
            matches!(&plan.operations[..], [Operation::Delete { .. }]),
            "{plan:?}"
        );
    }

    #[test]
    fn an_object_with_errors_is_reported_and_not_exported() {
        let mut bad = user(1, "ann");
        bad.attributes.insert(
            "userPrincipalName".to_owned(),
            vec!["ann smith@contoso.test".to_owned()],
        );
        let plan = run(
            &[bad, user(2, "bob")],
            &[],
            true,
            &[],
            &[],
            &PlanOptions::default(),
        );
        assert_eq!(plan.errors.len(), 1);
        assert_eq!(plan.errors[0].issues[0].attribute, "userPrincipalName");
        assert_eq!(plan.operations.len(), 1, "the other object still goes");
    }
}
