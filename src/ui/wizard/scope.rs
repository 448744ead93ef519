//! Step 6, the scope: the forest as a lazy tree of OUs with tri-state checkboxes. Checking an
//! OU includes its subtree; unchecking an OU inside an included one excludes it. Children are
//! read one level per request when a node is expanded; only the rows on screen are built, so a
//! directory of 10,000 OUs scrolls as smoothly as one of ten.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::runtime::Handle;

use crate::directory::Dn;
use crate::directory::ou_tree::{
    ContainerKind, DirectCounts, OuEntry, count_users_and_groups, find_containers, read_children,
};
use crate::setup::AdminSession;
use crate::ui::task::Lookup;
use crate::ui::theme;

/// How many OUs the filter box lists at most.
const FILTER_LIMIT: usize = 500;

/// What the administrator chose for one DN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Include,
    Exclude,
}

/// How a node's checkbox looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Checked,
    Unchecked,
    /// Included with something excluded below, or not included with something included below.
    Partial,
}

/// The scope as marks on DNs: included subtrees and, inside them, excluded ones. Pure: no
/// directory, no egui.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeMarks {
    marks: Vec<(Dn, Mark)>,
}

impl ScopeMarks {
    /// Marks from a saved scope (DNs that do not parse are left out: the review shows none).
    pub fn from_scope(included: &[String], excluded: &[String]) -> ScopeMarks {
        let parse = |dns: &[String], mark: Mark| -> Vec<(Dn, Mark)> {
            dns.iter()
                .filter_map(|dn| Dn::parse(dn).ok())
                .map(|dn| (dn, mark))
                .collect()
        };
        let mut marks = parse(included, Mark::Include);
        marks.extend(parse(excluded, Mark::Exclude));
        ScopeMarks { marks }
    }

    /// The mark that decides `dn`: its own, else its nearest marked ancestor's.
    fn nearest(&self, dn: &Dn, strict: bool) -> Option<Mark> {
        self.marks
            .iter()
            .filter(|(marked, _)| dn.is_within(marked) && !(strict && same(marked, dn)))
            .max_by_key(|(marked, _)| marked.rdns().len())
            .map(|(_, mark)| *mark)
    }

    pub fn state(&self, dn: &Dn) -> CheckState {
        let included = self.nearest(dn, false) == Some(Mark::Include);
        let differs_below = self.marks.iter().any(|(marked, mark)| {
            marked.is_within(dn) && !same(marked, dn) && (*mark == Mark::Include) != included
        });
        match (included, differs_below) {
            (_, true) => CheckState::Partial,
            (true, false) => CheckState::Checked,
            (false, false) => CheckState::Unchecked,
        }
    }

    /// True when an ancestor of `dn` is excluded: scope is included minus excluded, so nothing
    /// under an excluded OU can be included again; the administrator checks the ancestor instead.
    pub fn under_excluded(&self, dn: &Dn) -> bool {
        self.nearest(dn, true) == Some(Mark::Exclude)
    }

    /// A click on `dn`'s checkbox: a checked node becomes unchecked (excluded when an ancestor is
    /// included); an unchecked or partial one becomes checked with its whole subtree.
    pub fn toggle(&mut self, dn: &Dn) {
        let state = self.state(dn);
        self.marks.retain(|(marked, _)| !marked.is_within(dn));
        let inherited = self.nearest(dn, true);
        match state {
            CheckState::Checked => {
                if inherited == Some(Mark::Include) {
                    self.marks.push((dn.clone(), Mark::Exclude));
                }
            }
            CheckState::Unchecked | CheckState::Partial => {
                if inherited.is_none() {
                    self.marks.push((dn.clone(), Mark::Include));
                }
            }
        }
    }

    fn listed(&self, wanted: Mark) -> Vec<String> {
        let mut dns: Vec<String> = self
            .marks
            .iter()
            .filter(|(_, mark)| *mark == wanted)
            .map(|(dn, _)| dn.to_string())
            .collect();
        dns.sort();
        dns
    }

    pub fn included(&self) -> Vec<String> {
        self.listed(Mark::Include)
    }

    pub fn excluded(&self) -> Vec<String> {
        self.listed(Mark::Exclude)
    }
}

fn same(a: &Dn, b: &Dn) -> bool {
    a.normalized() == b.normalized()
}

/// One container the tree has read.
#[derive(Debug)]
struct TreeNode {
    entry: OuEntry,
    dn: Dn,
    depth: usize,
    expanded: bool,
    children: Children,
}

#[derive(Debug)]
enum Children {
    NotRead,
    Reading(Lookup<(ReadChildren, DirectCounts)>),
    /// The children, and how many users and groups sit directly in the node.
    Read(Vec<usize>, Option<DirectCounts>),
    Failed(String),
}

/// The picker: the tree read so far, the marks, the filter.
#[derive(Debug, Default)]
pub struct OuPicker {
    pub marks: ScopeMarks,
    /// Every node read, parents before children; index 0 is the domain.
    nodes: Vec<TreeNode>,
    by_dn: HashMap<String, usize>,
    pub filter: String,
    /// The filter text the last search was for, and its answer.
    searched: String,
    found: Lookup<Vec<OuEntry>>,
}

/// One row on screen.
#[derive(Debug, Clone, Copy)]
enum Row {
    Node(usize),
    Found(usize),
}

impl OuPicker {
    /// Starts the tree at the domain, with its first level being read.
    pub fn open(&mut self, runtime: &Handle, repaint: &egui::Context, admin: &Arc<AdminSession>) {
        self.open_offline(&admin.domain);
        self.found = Lookup::NotStarted;
        self.searched.clear();
        self.read_children_of(0, runtime, repaint, admin);
    }

    /// The tree is open (it has its domain node).
    pub fn is_open(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// Fills a node's children directly: for tests and benchmarks without a directory.
    pub fn insert_children(&mut self, parent_dn: &str, children: ReadChildren) {
        let Some(&parent) = self.by_dn.get(&normalized(parent_dn)) else {
            return;
        };
        self.attach(parent, children.0, None);
    }

    /// Starts the tree at `domain` without a directory (tests and benchmarks).
    pub fn open_offline(&mut self, domain: &Dn) {
        self.nodes.clear();
        self.by_dn.clear();
        self.insert(
            OuEntry {
                dn: domain.to_string(),
                name: domain.dns_name(),
                kind: ContainerKind::Domain,
            },
            domain.clone(),
            0,
        );
        self.nodes[0].expanded = true;
    }

    fn insert(&mut self, entry: OuEntry, dn: Dn, depth: usize) -> usize {
        let index = self.nodes.len();
        self.by_dn.insert(dn.normalized().to_owned(), index);
        self.nodes.push(TreeNode {
            entry,
            dn,
            depth,
            expanded: false,
            children: Children::NotRead,
        });
        index
    }

    fn attach(&mut self, parent: usize, entries: Vec<(OuEntry, Dn)>, counts: Option<DirectCounts>) {
        let depth = self.nodes[parent].depth + 1;
        let mut children = Vec::with_capacity(entries.len());
        for (entry, dn) in entries {
            let index = match self.by_dn.get(dn.normalized()) {
                Some(&index) => index,
                None => self.insert(entry, dn, depth),
            };
            children.push(index);
        }
        self.nodes[parent].children = Children::Read(children, counts);
    }

    fn read_children_of(
        &mut self,
        index: usize,
        runtime: &Handle,
        repaint: &egui::Context,
        admin: &Arc<AdminSession>,
    ) {
        let admin = Arc::clone(admin);
        let dn = self.nodes[index].entry.dn.clone();
        self.nodes[index].children =
            Children::Reading(Lookup::start(runtime, repaint, move |_| async move {
                let (children, counts) = futures::join!(
                    read_children(&admin.connection, &dn),
                    count_users_and_groups(&admin.connection, &dn)
                );
                let failed = |error: crate::directory::DirectoryError| {
                    crate::setup::SetupFailure::failed(None, error.to_string())
                };
                Ok((
                    ReadChildren::from_entries(children.map_err(failed)?),
                    counts.map_err(failed)?,
                ))
            }));
    }

    /// Takes the answers of the reads under way.
    fn poll(&mut self) {
        let mut arrived = Vec::new();
        for (index, node) in self.nodes.iter_mut().enumerate() {
            if let Children::Reading(lookup) = &mut node.children {
                lookup.poll();
                match std::mem::take(lookup) {
                    Lookup::Done((entries, counts)) => arrived.push((index, entries, counts)),
                    Lookup::Failed(failure) => {
                        node.children = Children::Failed(failure.to_string());
                    }
                    other => *lookup = other,
                }
            }
        }
        for (index, children, counts) in arrived {
            self.attach(index, children.0, Some(counts));
        }
        self.found.poll();
    }

    /// The rows to show, in order: the expanded tree, or the filter's answer.
    fn rows(&self) -> Vec<Row> {
        if !self.filter.trim().is_empty() {
            return match &self.found {
                Lookup::Done(found) => (0..found.len()).map(Row::Found).collect(),
                _ => Vec::new(),
            };
        }
        let mut rows = Vec::new();
        let mut stack = vec![0];
        while let Some(index) = stack.pop() {
            let Some(node) = self.nodes.get(index) else {
                break;
            };
            rows.push(Row::Node(index));
            if node.expanded
                && let Children::Read(children, _) = &node.children
            {
                stack.extend(children.iter().rev());
            }
        }
        rows
    }

    /// How many rows the tree shows now (for tests and benchmarks).
    pub fn row_count(&self) -> usize {
        self.rows().len()
    }

    /// Expands the node at `dn` (tests and benchmarks).
    pub fn expand(&mut self, dn: &str) {
        if let Some(&index) = self.by_dn.get(&normalized(dn)) {
            self.nodes[index].expanded = true;
        }
    }
}

/// Children as read, each with its DN parsed once: parsing 10,000 DNs is work for the reading
/// thread, not for a frame.
#[derive(Debug, Clone)]
pub struct ReadChildren(Vec<(OuEntry, Dn)>);

impl ReadChildren {
    /// An unparsable DN, which no server sends, becomes the empty DN and is never checked.
    pub fn from_entries(entries: Vec<OuEntry>) -> ReadChildren {
        ReadChildren(
            entries
                .into_iter()
                .map(|entry| {
                    let dn = Dn::parse(&entry.dn).unwrap_or_default();
                    (entry, dn)
                })
                .collect(),
        )
    }
}

fn normalized(dn: &str) -> String {
    Dn::parse(dn).map_or_else(|_| dn.to_lowercase(), |dn| dn.normalized().to_owned())
}

/// The picker's page.
pub fn scope_ui(
    ui: &mut egui::Ui,
    picker: &mut OuPicker,
    runtime: &Handle,
    admin: Option<&Arc<AdminSession>>,
) {
    ui.heading("Which OUs to synchronize");
    ui.label(
        "Check an OU to synchronize its users and groups, with everything below it. Uncheck an OU \
         inside a checked one to leave it out. Children are read from the directory as you expand.",
    );
    ui.add_space(6.0);
    ou_picker_ui(ui, picker, runtime, admin);
}

/// The OU tree of the forest `admin` signed in to, read as it is expanded, with its marks.
pub fn ou_picker_ui(
    ui: &mut egui::Ui,
    picker: &mut OuPicker,
    runtime: &Handle,
    admin: Option<&Arc<AdminSession>>,
) {
    picker.poll();

    match admin {
        Some(admin) if !picker.is_open() => picker.open(runtime, ui.ctx(), admin),
        None if !picker.is_open() => {
            ui.colored_label(
                theme::error(ui),
                "Check the enterprise admin first (step 3): the tree is read with that account.",
            );
            return;
        }
        _ => {}
    }

    ui.horizontal(|ui| {
        let label = ui.label("Filter");
        ui.add(
            egui::TextEdit::singleline(&mut picker.filter)
                .hint_text("part of an OU's name")
                .desired_width(260.0),
        )
        .labelled_by(label.id);
        if let Some(admin) = admin
            && !picker.filter.trim().is_empty()
            && picker.filter.trim() != picker.searched
        {
            picker.searched = picker.filter.trim().to_owned();
            let text = picker.searched.clone();
            let admin = Arc::clone(admin);
            picker.found = Lookup::start(runtime, ui.ctx(), move |_| async move {
                find_containers(
                    &admin.connection,
                    admin.domain.as_str(),
                    &text,
                    FILTER_LIMIT,
                )
                .await
                .map_err(|error| crate::setup::SetupFailure::failed(None, error.to_string()))
            });
        }
        if picker.found.is_running() && !picker.filter.trim().is_empty() {
            ui.spinner();
        }
    });
    if let Some(message) = picker.found.failure()
        && !picker.filter.trim().is_empty()
    {
        ui.colored_label(theme::error(ui), message.to_string());
    }
    ui.add_space(4.0);

    let summary_height = 110.0;
    let rows = picker.rows();
    let row_height = ui.spacing().interact_size.y + 2.0;
    egui::ScrollArea::vertical()
        .max_height((ui.available_height() - summary_height).max(120.0))
        .auto_shrink([false, false])
        .show_rows(ui, row_height, rows.len(), |ui, range| {
            for row in &rows[range] {
                match *row {
                    Row::Node(index) => node_row_ui(ui, picker, index, runtime, admin),
                    Row::Found(index) => found_row_ui(ui, picker, index),
                }
            }
        });

    ui.separator();
    summary_ui(ui, &picker.marks);
}

fn node_row_ui(
    ui: &mut egui::Ui,
    picker: &mut OuPicker,
    index: usize,
    runtime: &Handle,
    admin: Option<&Arc<AdminSession>>,
) {
    let depth = picker.nodes[index].depth;
    ui.horizontal(|ui| {
        ui.add_space(depth as f32 * 18.0);
        let node = &picker.nodes[index];
        let expandable =
            !matches!(&node.children, Children::Read(children, _) if children.is_empty());
        if matches!(node.children, Children::Reading(_)) {
            ui.spinner();
        } else if expandable {
            let arrow = if node.expanded { "⏷" } else { "⏵" };
            let what = if node.expanded { "Collapse" } else { "Expand" };
            let name = node.entry.name.clone();
            let button = ui
                .add(egui::Button::new(arrow).frame(false))
                .on_hover_text(format!("{what} {name}"));
            button.widget_info(|| {
                egui::WidgetInfo::labeled(egui::Role::Button, true, format!("{what} {name}"))
            });
            if button.clicked() {
                let node = &mut picker.nodes[index];
                node.expanded = !node.expanded;
                if node.expanded
                    && matches!(node.children, Children::NotRead | Children::Failed(_))
                    && let Some(admin) = admin
                {
                    picker.read_children_of(index, runtime, ui.ctx(), admin);
                }
            }
        } else {
            ui.add_space(18.0);
        }
        checkbox_ui(
            ui,
            &mut picker.marks,
            &picker.nodes[index].dn.clone(),
            &picker.nodes[index].entry.name.clone(),
        );
        let node = &picker.nodes[index];
        ui.weak(kind_word(&node.entry.kind));
        if let Children::Read(_, Some(counts)) = &node.children
            && (counts.users > 0 || counts.groups > 0)
        {
            ui.weak(format!(
                "· {} user(s), {} group(s) directly here",
                counts.users, counts.groups
            ));
        }
        if let Children::Failed(message) = &node.children {
            ui.colored_label(theme::error(ui), message);
        }
    });
}

fn found_row_ui(ui: &mut egui::Ui, picker: &mut OuPicker, index: usize) {
    let Lookup::Done(found) = &picker.found else {
        return;
    };
    let Some(entry) = found.get(index) else {
        return;
    };
    let dn = Dn::parse(&entry.dn).unwrap_or_default();
    let name = entry.name.clone();
    let full = entry.dn.clone();
    ui.horizontal(|ui| {
        checkbox_ui(ui, &mut picker.marks, &dn, &name);
        ui.weak(full);
    });
}

/// A tri-state checkbox labelled with the OU's name (its accessible name too).
fn checkbox_ui(ui: &mut egui::Ui, marks: &mut ScopeMarks, dn: &Dn, name: &str) {
    let state = marks.state(dn);
    let mut checked = state == CheckState::Checked;
    let blocked = marks.under_excluded(dn);
    let response = ui
        .add_enabled(
            !blocked,
            egui::Checkbox::new(&mut checked, name).indeterminate(state == CheckState::Partial),
        )
        .on_hover_text(dn.to_string())
        .on_disabled_hover_text(format!(
            "{dn} is inside an excluded OU; check that OU to include its subtree again"
        ));
    if response.clicked() {
        marks.toggle(dn);
    }
}

fn kind_word(kind: &ContainerKind) -> &str {
    match kind {
        ContainerKind::Domain => "domain",
        ContainerKind::OrganizationalUnit => "OU",
        ContainerKind::Container => "container",
        ContainerKind::BuiltinDomain => "built-in",
        ContainerKind::Other(class) => class,
    }
}

fn summary_ui(ui: &mut egui::Ui, marks: &ScopeMarks) {
    let included = marks.included();
    let excluded = marks.excluded();
    if included.is_empty() {
        ui.colored_label(
            theme::warning(ui),
            "Nothing is in scope yet: check at least one OU.",
        );
        return;
    }
    ui.label(format!(
        "In scope: {} OU subtree(s) included, {} excluded inside them.",
        included.len(),
        excluded.len()
    ));
    egui::ScrollArea::vertical()
        .id_salt("scope_summary")
        .max_height(70.0)
        .show(ui, |ui| {
            for dn in &included {
                ui.label(format!("✔ include  {dn}"));
            }
            for dn in &excluded {
                ui.label(format!("✖ exclude  {dn}"));
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(text: &str) -> Dn {
        Dn::parse(text).unwrap_or_default()
    }

    const SALES: &str = "OU=Sales,DC=corp,DC=test";
    const PARIS: &str = "OU=Paris,OU=Sales,DC=corp,DC=test";
    const LYON: &str = "OU=Lyon,OU=Sales,DC=corp,DC=test";

    #[test]
    fn checking_an_ou_includes_its_subtree() {
        let mut marks = ScopeMarks::default();
        marks.toggle(&dn(SALES));
        assert_eq!(marks.state(&dn(SALES)), CheckState::Checked);
        assert_eq!(marks.state(&dn(PARIS)), CheckState::Checked);
        assert_eq!(marks.included(), vec![SALES.to_owned()]);
        assert!(marks.excluded().is_empty());
    }

    #[test]
    fn unchecking_a_child_excludes_it_and_the_parent_is_partial() {
        let mut marks = ScopeMarks::default();
        marks.toggle(&dn(SALES));
        marks.toggle(&dn(PARIS));
        assert_eq!(marks.state(&dn(PARIS)), CheckState::Unchecked);
        assert_eq!(marks.state(&dn(LYON)), CheckState::Checked);
        assert_eq!(marks.state(&dn(SALES)), CheckState::Partial);
        assert_eq!(marks.included(), vec![SALES.to_owned()]);
        assert_eq!(marks.excluded(), vec![PARIS.to_owned()]);
        // Checking the child again removes the exclusion rather than adding an include.
        marks.toggle(&dn(PARIS));
        assert!(marks.excluded().is_empty());
        assert_eq!(marks.included(), vec![SALES.to_owned()]);
    }

    #[test]
    fn a_partial_parent_becomes_fully_checked() {
        let mut marks = ScopeMarks::default();
        marks.toggle(&dn(PARIS));
        assert_eq!(marks.state(&dn(SALES)), CheckState::Partial);
        marks.toggle(&dn(SALES));
        assert_eq!(marks.included(), vec![SALES.to_owned()]);
        assert_eq!(marks.state(&dn(SALES)), CheckState::Checked);
        // And unchecking it leaves nothing behind.
        marks.toggle(&dn(SALES));
        assert!(marks.included().is_empty() && marks.excluded().is_empty());
    }

    #[test]
    fn nothing_under_an_excluded_ou_can_be_included() {
        let mut marks = ScopeMarks::from_scope(&[SALES.to_owned()], &[PARIS.to_owned()]);
        let inside = dn("OU=Nord,OU=Paris,OU=Sales,DC=corp,DC=test");
        assert!(marks.under_excluded(&inside));
        assert!(!marks.under_excluded(&dn(PARIS)));
        assert_eq!(marks.state(&inside), CheckState::Unchecked);
        marks.toggle(&dn(SALES));
        assert!(!marks.under_excluded(&inside));
    }

    #[test]
    fn names_are_compared_without_case() {
        let mut marks = ScopeMarks::default();
        marks.toggle(&dn(SALES));
        assert_eq!(
            marks.state(&dn("ou=paris,ou=SALES,dc=corp,dc=test")),
            CheckState::Checked
        );
    }
}
