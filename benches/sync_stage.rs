//! Synchronization (plan) stage benchmark (target: under 10 s and 300 MB for 100,000 objects): 100,000 synthetic in-scope objects (95 %
//! users with the attributes dirsync syncs, 5 % groups of 20 members) through `engine::plan::plan`, in three
//! scenarios:
//!
//! - first run: no links, an empty cloud: everything is created;
//! - steady state: every object linked as last exported, 1 % changed: 1 % is updated;
//! - rejoin: no links (a lost state.db), the cloud holds every object: every one is matched;
//! - steady state with sync rules: as steady state, with ten scoping rules decided for every
//!   object (nine excludes that hold for none, then an include) and five expression mappings in
//!   the attribute flow (README, "Sync rules"); its time is beside the default flow's above.
//!
//! Each scenario runs in its own child process so that its peak memory (VmHWM) is its own. Prints
//! figures beside the targets (under 10 s, under 300 MB); asserts the plan's shape, never a time.
//!
//!     cargo bench --bench sync_stage
//!     BENCH_OBJECTS=20000 cargo bench --bench sync_stage
//!
//! `cargo test --all-targets` builds this and runs it without `--bench`; it then does nothing.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use dirsync::cloud::{CloudObject, ObjectKind};
use dirsync::directory::Dn;
use dirsync::directory::objects::DirectoryObject;
use dirsync::engine::attribute_flow::{TenantDomains, cloud_shape};
use dirsync::engine::plan::{JoinKind, Operation, Plan, PlanInput, PlanOptions, plan};
use dirsync::engine::rule_scope::{RuleSets, decide_object};
use dirsync::guid::Guid;
use dirsync::rules::{RulesConfig, SyncRules, compile};
use dirsync::store::sync_state::Link;
use serde_json::{Value, json};

const TARGET_SECS: f64 = 10.0;
const TARGET_PEAK_MB: f64 = 300.0;
/// One object in this many is a group.
const GROUP_EVERY: usize = 20;
const MEMBERS_PER_GROUP: usize = 20;
/// One object in this many changes between runs (steady state).
const CHANGE_EVERY: usize = 100;
const SCENARIOS: &[&str] = &["first-run", "steady-state", "rejoin", "steady-state-rules"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|arg| arg == "--bench") {
        return;
    }
    let count: usize = std::env::var("BENCH_OBJECTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000);
    if let Some(position) = args.iter().position(|arg| arg == "--scenario") {
        run_scenario(&args[position + 1], count);
        return;
    }
    println!(
        "synchronization stage: {count} objects ({} users, {} groups of {MEMBERS_PER_GROUP} members), {} cores available",
        count - count / GROUP_EVERY,
        count / GROUP_EVERY,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("  targets: plan under {TARGET_SECS} s, peak memory under {TARGET_PEAK_MB} MB");
    let exe = std::env::current_exe().unwrap();
    for scenario in SCENARIOS {
        let status = Command::new(&exe)
            .args(["--bench", "--scenario", scenario])
            .status()
            .unwrap();
        assert!(status.success(), "scenario {scenario} failed");
    }
}

fn run_scenario(scenario: &str, count: usize) {
    let rss_at_start = memory_mb("VmRSS");
    let started = Instant::now();
    let domains = TenantDomains {
        verified: vec!["contoso.test".to_owned()],
        initial: "contoso.onmicrosoft.com".to_owned(),
    };
    let rules = if scenario == "steady-state-rules" {
        bench_rules()
    } else {
        SyncRules::default()
    };
    let mut objects = directory_objects(count);
    let mut links = HashMap::new();
    let mut cloud = Vec::new();
    let mut changed = 0;
    match scenario {
        "first-run" => {}
        "steady-state" | "steady-state-rules" => {
            links = links_as_exported(&objects, &domains, &rules);
            changed = change_some(&mut objects);
        }
        "rejoin" => cloud = cloud_objects(&objects, &domains),
        other => panic!("unknown scenario {other}"),
    }
    let build_time = started.elapsed();
    let rss_with_input = memory_mb("VmRSS");

    let options = PlanOptions::default();
    // Rejoining: every create's intent was kept and the sync app owns every group it made.
    let owned_groups: std::collections::HashSet<String> =
        cloud.iter().map(|object| object.id.clone()).collect();
    let create_intents: std::collections::HashSet<_> =
        objects.iter().map(|object| object.anchor).collect();
    let started = Instant::now();
    // The import decides the scoping rules for each object it reads; timed with the plan, as
    // both are the synchronization a run waits for.
    let sets = RuleSets::default();
    let in_scope = objects
        .iter()
        .filter(|object| decide_object(&rules, &sets, object).in_scope)
        .count();
    assert_eq!(
        in_scope,
        objects.len(),
        "the bench's rules keep every object"
    );
    let scoping_time = started.elapsed();
    let result = plan(&PlanInput {
        objects: &objects,
        gone: &[],
        full: true,
        links: &links,
        cloud: &cloud,
        owned_groups: &owned_groups,
        create_intents: &create_intents,
        confirmed_group_matches: &HashMap::new(),
        held_disabled: &std::collections::HashSet::new(),
        domains: &domains,
        rules: &rules,
        aliases: &HashMap::new(),
        options: &options,
        now_ms: 0,
    });
    let plan_time = started.elapsed();
    let peak = memory_mb("VmHWM");

    check_plan(scenario, &result, count, changed);
    println!();
    println!("  {scenario}: {}", summary(&result));
    if scenario == "steady-state-rules" {
        println!(
            "    of which scoping {:>6.2} s   (10 rules for {} objects; the plan then applied 5 expression mappings)",
            scoping_time.as_secs_f64(),
            objects.len()
        );
    }
    println!(
        "    plan            {:>8.2} s   (target under {TARGET_SECS} s)   {}",
        plan_time.as_secs_f64(),
        verdict(plan_time.as_secs_f64() < TARGET_SECS)
    );
    println!(
        "    peak memory     {peak:>8.0} MB  (target under {TARGET_PEAK_MB} MB)  {}",
        verdict(peak < TARGET_PEAK_MB)
    );
    println!(
        "    RSS: {rss_at_start:.0} MB at start, {rss_with_input:.0} MB with the input built ({:.2} s to build), peak {peak:.0} MB: the plan itself added {:.0} MB",
        build_time.as_secs_f64(),
        peak - rss_with_input
    );
    drop_timed(result, "plan");
}

/// Freeing 100,000 objects' worth of plan is part of a run's cost too.
fn drop_timed(plan: Plan, what: &str) {
    let started = Instant::now();
    drop(plan);
    let elapsed: Duration = started.elapsed();
    println!("    dropping the {what}: {:.2} s", elapsed.as_secs_f64());
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// The plan must be what the scenario says, or the time means nothing.
fn check_plan(scenario: &str, result: &Plan, count: usize, changed: usize) {
    let creates = result.count(|op| matches!(op, Operation::Create { .. }));
    let updates = result.count(|op| matches!(op, Operation::Update { .. }));
    let joins = result.count(|op| matches!(op, Operation::Join { .. }));
    let hard_matches = result.count(|op| {
        matches!(
            op,
            Operation::Join {
                how: JoinKind::HardMatch,
                ..
            }
        )
    });
    assert!(result.errors.is_empty(), "{:?}", result.errors.first());
    match scenario {
        "first-run" => assert_eq!(creates, count),
        "steady-state" | "steady-state-rules" => {
            assert_eq!(updates, changed);
            assert_eq!(result.operations.len(), changed, "only the changed objects");
            assert_eq!(result.unchanged, count - changed);
        }
        "rejoin" => {
            assert_eq!(joins, count);
            assert_eq!(hard_matches, count - count / GROUP_EVERY, "every user");
        }
        _ => unreachable!(),
    }
}

fn summary(result: &Plan) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for operation in &result.operations {
        let name = match operation {
            Operation::Create { .. } => "creates",
            Operation::Join { .. } => "joins",
            Operation::Update { .. } => "updates",
            Operation::Members { .. } => "member writes",
            Operation::Manager { .. } => "manager writes",
            Operation::Delete { .. } => "deletes",
            Operation::Disable { .. } => "disables",
        };
        *counts.entry(name).or_default() += 1;
    }
    let mut parts: Vec<String> = counts
        .iter()
        .map(|(name, count)| format!("{count} {name}"))
        .collect();
    parts.push(format!("{} unchanged", result.unchanged));
    parts.push(format!("{} warnings", result.warnings.len()));
    parts.join(", ")
}

/// VmRSS (now) or VmHWM (peak) of this process, in MB.
fn memory_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

// ---- Synthetic directory --------------------------------------------------------------------

fn anchor(index: usize) -> Guid {
    let mut bytes = [0x5a; 16];
    bytes[8..].copy_from_slice(&(index as u64).to_be_bytes());
    Guid(bytes)
}

fn is_group(index: usize) -> bool {
    index % GROUP_EVERY == GROUP_EVERY - 1
}

fn user_dn(index: usize) -> String {
    format!(
        "CN=User {index:06},OU=Dept{:02},OU=Staff,OU=Corp,DC=corp,DC=test",
        index % 40
    )
}

fn group_dn(index: usize) -> String {
    format!("CN=Group {index:06},OU=Groups,OU=Corp,DC=corp,DC=test")
}

const DEPARTMENTS: &[&str] = &["Sales", "Finance", "Engineering", "Support", "Legal", "HR"];
const TITLES: &[&str] = &[
    "Clerk", "Buyer", "Engineer", "Manager", "Analyst", "Director",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Seattle", "WA", "98101"),
    ("Austin", "TX", "73301"),
    ("Boston", "MA", "02108"),
];

fn directory_objects(count: usize) -> Vec<DirectoryObject> {
    let users: Vec<usize> = (0..count).filter(|index| !is_group(*index)).collect();
    (0..count)
        .map(|index| {
            if is_group(index) {
                // Members spread over the whole directory, as real groups are.
                let members = (0..MEMBERS_PER_GROUP)
                    .map(|n| user_dn(users[(index * 7 + n * 997) % users.len()]))
                    .collect();
                group(index, members)
            } else {
                // Every user but the first of each block of 50 has a manager: that first user.
                let manager = (index % 50 != 0).then(|| user_dn(index - index % 50));
                user(index, manager)
            }
        })
        .collect()
}

fn user(index: usize, manager: Option<String>) -> DirectoryObject {
    let alias = format!("user{index:06}");
    let (city, state, postal_code) = CITIES[index % CITIES.len()];
    let mut attributes: BTreeMap<String, Vec<String>> = [
        ("name", format!("User {index:06}")),
        ("sAMAccountName", alias.clone()),
        ("userPrincipalName", format!("{alias}@contoso.test")),
        ("mail", format!("{alias}@contoso.test")),
        ("mailNickname", alias.clone()),
        ("displayName", format!("User {index:06}")),
        ("givenName", "User".to_owned()),
        ("sn", format!("{index:06}")),
        ("title", TITLES[index % TITLES.len()].to_owned()),
        (
            "department",
            DEPARTMENTS[index % DEPARTMENTS.len()].to_owned(),
        ),
        ("company", "Contoso".to_owned()),
        (
            "physicalDeliveryOfficeName",
            format!("Building {}", index % 12),
        ),
        ("telephoneNumber", format!("+1 555 {:04}", index % 10_000)),
        ("mobile", format!("+1 555 9{:03}", index % 1000)),
        ("streetAddress", format!("{} Main Street", index % 900 + 1)),
        ("l", city.to_owned()),
        ("st", state.to_owned()),
        ("postalCode", postal_code.to_owned()),
        ("co", "United States".to_owned()),
        ("c", "US".to_owned()),
        ("employeeID", format!("E{index:07}")),
        ("userAccountControl", "512".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), vec![value]))
    .collect();
    attributes.insert(
        "proxyAddresses".to_owned(),
        vec![
            format!("SMTP:{alias}@contoso.test"),
            format!("smtp:{alias}@contoso.onmicrosoft.com"),
            format!("X500:/o=Contoso/ou=Exchange/cn=Recipients/cn={alias}"),
        ],
    );
    if let Some(manager) = manager {
        attributes.insert("manager".to_owned(), vec![manager]);
    }
    DirectoryObject {
        anchor: anchor(index),
        dn: Dn::parse(&user_dn(index)).unwrap(),
        kind: ObjectKind::User,
        attributes,
        object_sid: None,
        problems: Vec::new(),
    }
}

fn group(index: usize, members: Vec<String>) -> DirectoryObject {
    let name = format!("Group {index:06}");
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    attributes.insert("name".to_owned(), vec![name.clone()]);
    attributes.insert("displayName".to_owned(), vec![name]);
    attributes.insert(
        "sAMAccountName".to_owned(),
        vec![format!("group{index:06}")],
    );
    attributes.insert("description".to_owned(), vec![format!("Team {index}")]);
    // A global security group.
    attributes.insert("groupType".to_owned(), vec!["-2147483646".to_owned()]);
    attributes.insert("member".to_owned(), members);
    DirectoryObject {
        anchor: anchor(index),
        dn: Dn::parse(&group_dn(index)).unwrap(),
        kind: ObjectKind::Group,
        attributes,
        object_sid: None,
        problems: Vec::new(),
    }
}

/// What the store would hold after a run exported every object as it is now.
/// Ten scoping rules that keep every synthetic object after deciding all ten, and five
/// expression mappings.
fn bench_rules() -> SyncRules {
    let text = r#"
        [[users.scoping]]
        action = "exclude"
        attribute = "description"
        operator = "starts-with"
        value = "svc-"
        [[users.scoping]]
        action = "exclude"
        attribute = "title"
        operator = "equals"
        value = "Contractor"
        [[users.scoping]]
        action = "exclude"
        attribute = "department"
        operator = "ends-with"
        value = "(old)"
        [[users.scoping]]
        action = "exclude"
        attribute = "employeeID"
        operator = "matches"
        value = "^X[0-9]+$"
        [[users.scoping]]
        action = "exclude"
        attribute = "extensionAttribute1"
        operator = "present"
        [[users.scoping]]
        action = "exclude"
        attribute = "company"
        operator = "equals"
        value = "Fabrikam"
        [[users.scoping]]
        action = "exclude"
        attribute = "mail"
        operator = "ends-with"
        value = "@fabrikam.test"
        [[users.scoping]]
        action = "exclude"
        attribute = "l"
        operator = "equals"
        value = "Nowhere"
        [[users.scoping]]
        action = "exclude"
        attribute = "sAMAccountName"
        operator = "starts-with"
        value = "test-"
        [[users.scoping]]
        action = "include"
        attribute = "userPrincipalName"
        operator = "present"
        [users.mappings]
        displayName = 'Join(" ", [givenName], [sn])'
        department = 'ToUpper(Trim([department]))'
        jobTitle = 'IIF(IsPresent([title]), [title], "Staff")'
        employeeType = 'Switch([company], "Other", "Contoso", "Employee")'
        "onPremisesExtensionAttributes.extensionAttribute1" = 'Left([employeeID], 4)'
    "#;
    let mut rules = compile(&toml::from_str::<RulesConfig>(text).unwrap()).unwrap();
    rules.extension_app_id = "0123456789abcdef0123456789abcdef".to_owned();
    rules
}

fn links_as_exported(
    objects: &[DirectoryObject],
    domains: &TenantDomains,
    rules: &SyncRules,
) -> HashMap<Guid, Link> {
    let anchor_by_dn: HashMap<&str, Guid> = objects
        .iter()
        .map(|object| (object.dn.normalized(), object.anchor))
        .collect();
    let resolve = |dn: &Dn| anchor_by_dn.get(dn.normalized()).copied();
    objects
        .iter()
        .map(|object| {
            let shape = cloud_shape(object, domains, rules);
            let link = Link {
                anchor: object.anchor,
                kind: object.kind,
                dn: object.dn.clone(),
                cloud_id: cloud_id(object.anchor),
                exported: shape.properties,
                members: shape
                    .members
                    .iter()
                    .filter_map(resolve)
                    .collect::<BTreeSet<_>>(),
                manager: shape.manager.as_ref().and_then(resolve),
                disabled_at: None,
            };
            (object.anchor, link)
        })
        .collect()
}

/// Changes one object in [`CHANGE_EVERY`]: a user's title, a group's description. Returns how many.
fn change_some(objects: &mut [DirectoryObject]) -> usize {
    let mut changed = 0;
    for object in objects.iter_mut().step_by(CHANGE_EVERY) {
        let attribute = match object.kind {
            ObjectKind::User => "title",
            ObjectKind::Group => "description",
        };
        object.attributes.insert(
            attribute.to_owned(),
            vec!["Changed since the last run".to_owned()],
        );
        changed += 1;
    }
    changed
}

/// The cloud after a lost state.db: every object exists, users stamped with their immutableId
/// (Graph gives groups none), with the properties Graph returns.
fn cloud_objects(objects: &[DirectoryObject], domains: &TenantDomains) -> Vec<CloudObject> {
    objects
        .iter()
        .map(|object| {
            let mut properties = cloud_shape(object, domains, &SyncRules::default()).properties;
            properties.insert("id".to_owned(), json!(cloud_id(object.anchor)));
            let kind = match object.kind {
                ObjectKind::User => {
                    let addresses: Vec<Value> = object
                        .values("proxyAddresses")
                        .iter()
                        .map(|address| json!(address))
                        .collect();
                    properties.insert("proxyAddresses".to_owned(), Value::Array(addresses));
                    ObjectKind::User
                }
                ObjectKind::Group => ObjectKind::Group,
            };
            CloudObject {
                id: cloud_id(object.anchor),
                kind,
                properties,
            }
        })
        .collect()
}

fn cloud_id(anchor: Guid) -> String {
    anchor.to_string()
}
