//! The tenant in memory behind one mutex, and its state file: an append-only journal of JSON
//! lines (a snapshot line, then one line per changed record) replayed and compacted at start and
//! at stop. Every mutation reaches the file (written and flushed to the operating system) before
//! the request that made it is answered.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{DirObject, MemberEvent, STATE_FORMAT, State, Tombstone};

/// One line of the state file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Entry {
    Snapshot(Box<State>),
    Object(Box<DirObject>),
    ObjectRemoved(String),
    Tombstone(Tombstone),
    Member(MemberEvent),
    Assignment(Map<String, Value>),
    AssignmentRemoved(String),
    Organization(Map<String, Value>),
    OnPremSync(Map<String, Value>),
    Domains(Vec<Value>),
    Seq(u64),
}

pub struct Store {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Why a write did not reach the state file.
#[derive(Debug)]
pub enum StoreError {
    /// Writing this change failed: it is in memory, not acknowledged, and the store now
    /// refuses writes until it has rewritten the whole file.
    Write(io::Error),
    /// An earlier write failed and the file still cannot be rewritten: nothing was changed.
    Unavailable(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Write(error) => write!(f, "the state file could not be written: {error}"),
            StoreError::Unavailable(why) => write!(
                f,
                "the state file failed earlier and cannot be rewritten yet: {why}"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for io::Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Write(error) => error,
            StoreError::Unavailable(_) => io::Error::other(error.to_string()),
        }
    }
}

/// The state file, open for appending.
struct Journal {
    path: PathBuf,
    file: Box<dyn Write + Send>,
}

/// The locked tenant: read and change `state`, then tell the journal what changed.
pub struct Inner {
    pub state: State,
    journal: Option<Journal>,
    pending: Vec<String>,
    last_written_seq: u64,
    /// Set when a write to the journal failed: the file may end in a torn line and lacks what
    /// is in memory, so it must be rewritten whole before anything else is written.
    failed: Option<String>,
}

impl Store {
    /// Loads the state file when there is one (replaying its journal), else makes a tenant with
    /// `create`. With a path, the file is compacted (mode 0600: it holds the lab's credentials)
    /// and left open for appending.
    pub fn open(path: Option<&Path>, create: impl FnOnce() -> State) -> io::Result<Store> {
        let state = match path {
            Some(path) if path.exists() => load(path)?,
            _ => create(),
        };
        let journal = match path {
            Some(path) => Some(Journal {
                path: path.to_owned(),
                file: Box::new(compact(path, &state)?),
            }),
            None => None,
        };
        let last_written_seq = state.seq;
        Ok(Store {
            inner: Mutex::new(Inner {
                state,
                journal,
                pending: Vec::new(),
                last_written_seq,
                failed: None,
            }),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held leaves a usable tenant: keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the tenant and writes what it changed to the journal before returning.
    /// After a failed write, the file is first rewritten whole; while it cannot be, `f` does
    /// not run.
    pub fn write<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Result<T, StoreError> {
        let mut inner = self.lock();
        inner.recover().map_err(StoreError::Unavailable)?;
        let out = f(&mut inner);
        inner.commit().map_err(StoreError::Write)?;
        Ok(out)
    }

    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let inner = self.lock();
        f(&inner.state)
    }

    /// Rewrites the state file as one snapshot (at stop).
    pub fn compact(&self) -> io::Result<()> {
        let mut inner = self.lock();
        if inner.failed.is_none() {
            inner.commit()?;
        }
        inner.rewrite()
    }

    /// Makes the journal's writes fail (a full disk), for tests.
    #[cfg(test)]
    fn break_journal(&self, after_bytes: usize) {
        let mut inner = self.lock();
        if let Some(journal) = &mut inner.journal {
            let file = std::mem::replace(&mut journal.file, Box::new(io::sink()));
            journal.file = Box::new(FailingWriter {
                inner: file,
                left: after_bytes,
            });
        }
    }
}

/// Writes `left` bytes, then fails as a full disk does.
#[cfg(test)]
struct FailingWriter {
    inner: Box<dyn Write + Send>,
    left: usize,
}

#[cfg(test)]
impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "No space left on device",
            ));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        self.inner.write(&buf[..n])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Inner {
    /// The next change sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.state.seq += 1;
        self.state.seq
    }

    fn push(&mut self, entry: &Entry) {
        if self.journal.is_some() {
            match serde_json::to_string(entry) {
                Ok(line) => self.pending.push(line),
                Err(error) => {
                    eprintln!("tenant-emulator: cannot serialize a journal entry: {error}");
                }
            }
        }
    }

    /// Records the current value of an object for the journal.
    pub fn touch(&mut self, id: &str) {
        if self.journal.is_none() {
            return;
        }
        if let Some(object) = self.state.objects.get(id) {
            let entry = Entry::Object(Box::new(object.clone()));
            self.push(&entry);
        }
    }

    pub fn insert_object(&mut self, object: DirObject) {
        let id = object.id().to_owned();
        self.state.objects.insert(id.clone(), object);
        self.touch(&id);
    }

    /// Removes an object for good, leaving a tombstone for delta queries.
    pub fn remove_object(&mut self, id: &str) -> Option<DirObject> {
        let object = self.state.objects.remove(id)?;
        let seq = self.next_seq();
        let tombstone = Tombstone {
            id: id.to_owned(),
            kind: object.kind,
            seq,
            mailbox: crate::mailbox::gone(&object, seq),
        };
        self.state
            .tombstones
            .insert(id.to_owned(), tombstone.clone());
        self.push(&Entry::ObjectRemoved(id.to_owned()));
        self.push(&Entry::Tombstone(tombstone));
        Some(object)
    }

    pub fn member_event(&mut self, event: MemberEvent) {
        self.push(&Entry::Member(event.clone()));
        self.state.member_events.push(event);
    }

    pub fn put_assignment(&mut self, assignment: Map<String, Value>) {
        let id = assignment
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.push(&Entry::Assignment(assignment.clone()));
        self.state.assignments.insert(id, assignment);
    }

    pub fn remove_assignment(&mut self, id: &str) -> Option<Map<String, Value>> {
        let removed = self.state.assignments.remove(id)?;
        self.push(&Entry::AssignmentRemoved(id.to_owned()));
        Some(removed)
    }

    pub fn touch_organization(&mut self) {
        let entry = Entry::Organization(self.state.organization.clone());
        self.push(&entry);
    }

    pub fn touch_domains(&mut self) {
        let entry = Entry::Domains(self.state.domains.clone());
        self.push(&entry);
    }

    pub fn touch_onprem_sync(&mut self) {
        let entry = Entry::OnPremSync(self.state.onprem_sync.clone());
        self.push(&entry);
    }

    /// Writes what changed since the last commit. On failure the store is marked failed and
    /// keeps what is pending: the next write rewrites the whole file first.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.journal.is_some() && self.state.seq != self.last_written_seq {
            let entry = Entry::Seq(self.state.seq);
            self.push(&entry);
        }
        self.last_written_seq = self.state.seq;
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(journal) = &mut self.journal else {
            self.pending.clear();
            return Ok(());
        };
        let mut text = String::new();
        for line in &self.pending {
            text.push_str(line);
            text.push('\n');
        }
        let written = journal
            .file
            .write_all(text.as_bytes())
            .and_then(|()| journal.file.flush());
        match written {
            Ok(()) => {
                self.pending.clear();
                Ok(())
            }
            Err(error) => {
                eprintln!(
                    "tenant-emulator: writing {} failed ({error}); writes wait until it can be rewritten",
                    journal.path.display()
                );
                self.failed = Some(error.to_string());
                Err(error)
            }
        }
    }

    /// After a failed write: rewrites the whole file from memory (which drops a torn last line,
    /// and makes the pending entries unneeded), or says why it still cannot.
    fn recover(&mut self) -> Result<(), String> {
        let Some(earlier) = self.failed.clone() else {
            return Ok(());
        };
        self.rewrite()
            .map_err(|error| format!("{error} (first: {earlier})"))
    }

    /// Writes the state as one snapshot and reopens the file for appending.
    fn rewrite(&mut self) -> io::Result<()> {
        let Some(journal) = &mut self.journal else {
            return Ok(());
        };
        let file = compact(&journal.path, &self.state)?;
        journal.file = Box::new(file);
        self.pending.clear();
        self.last_written_seq = self.state.seq;
        self.failed = None;
        Ok(())
    }
}

fn apply(state: &mut Option<State>, entry: Entry) {
    if let Entry::Snapshot(snapshot) = entry {
        *state = Some(*snapshot);
        return;
    }
    let Some(state) = state.as_mut() else {
        return;
    };
    match entry {
        Entry::Snapshot(_) => {}
        Entry::Object(object) => {
            let id = object.id().to_owned();
            state.tombstones.remove(&id);
            state.objects.insert(id, *object);
        }
        Entry::ObjectRemoved(id) => {
            state.objects.remove(&id);
        }
        Entry::Tombstone(tombstone) => {
            state.tombstones.insert(tombstone.id.clone(), tombstone);
        }
        Entry::Member(event) => state.member_events.push(event),
        Entry::Assignment(assignment) => {
            let id = assignment
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            state.assignments.insert(id, assignment);
        }
        Entry::AssignmentRemoved(id) => {
            state.assignments.remove(&id);
        }
        Entry::Organization(organization) => state.organization = organization,
        Entry::OnPremSync(sync) => state.onprem_sync = sync,
        Entry::Domains(domains) => state.domains = domains,
        Entry::Seq(seq) => state.seq = state.seq.max(seq),
    }
}

fn load(path: &Path) -> io::Result<State> {
    let bytes = std::fs::read(path)?;
    let mut state = None;
    // A write is one or more whole lines; only the file's unterminated tail can be torn (the
    // process died, or the disk filled, while writing it). Its request never got an answer,
    // so dropping it loses nothing that was acknowledged.
    let (complete, tail) = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) => bytes.split_at(end + 1),
        None => (&bytes[..0], &bytes[..]),
    };
    let mut number = 0;
    for line in complete.split(|b| *b == b'\n') {
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => apply(&mut state, entry),
            Err(error) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} line {number} is not a state record ({error}); only an unfinished last line may be torn, so the file is damaged: restore it, or delete it to start a new tenant",
                        path.display()
                    ),
                ));
            }
        }
    }
    if !tail.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Entry>(tail) {
            Ok(entry) => apply(&mut state, entry),
            Err(error) => eprintln!(
                "tenant-emulator: ignoring the torn last line ({number}) of {}: {error}",
                path.display()
            ),
        }
    }
    let state = state.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} holds no tenant snapshot", path.display()),
        )
    })?;
    if state.format != STATE_FORMAT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} was written by an older tenant-emulator (state format {}, this one reads {STATE_FORMAT}: its password and secret digests use another algorithm); delete it to start a new tenant",
                path.display(),
                state.format
            ),
        ));
    }
    Ok(state)
}

/// Writes the state as one snapshot line to a temporary file, renames it over the state file
/// and returns the state file opened for appending.
fn compact(path: &Path, state: &State) -> io::Result<File> {
    let temporary = path.with_extension("tmp");
    {
        let mut file = create_private(&temporary)?;
        let line = serde_json::to_string(&Entry::Snapshot(Box::new(state.clone())))
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        file.write_all(line.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    OpenOptions::new().append(true).open(path)
}

/// Creates (or truncates) a file only its owner may read: the state holds the lab's
/// credentials.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // An existing temporary file keeps its mode: set it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{NewTenant, create};

    fn tenant() -> State {
        create(&NewTenant {
            initial_domain: "contoso-lab.onmicrosoft.com".into(),
            verified_domains: Vec::new(),
        })
    }

    /// A change that bumps the sequence and records the organization.
    fn rename(inner: &mut Inner, name: &str) {
        inner.next_seq();
        inner
            .state
            .organization
            .insert("displayName".into(), Value::String(name.to_owned()));
        inner.touch_organization();
    }

    fn display_name(state: &State) -> String {
        state.organization["displayName"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn a_failed_write_is_refused_until_the_file_is_rewritten_and_loses_nothing_acknowledged() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("state.jsonl");
        let store = Store::open(Some(&path), tenant).expect("opens");
        store
            .write(|inner| rename(inner, "First"))
            .expect("written");

        // The disk fills in the middle of the next line.
        store.break_journal(10);
        let failed = store.write(|inner| rename(inner, "Second"));
        assert!(matches!(failed, Err(StoreError::Write(_))), "{failed:?}");

        // While the file cannot be rewritten (its directory is gone), writes are refused
        // without running.
        let moved = dir.path().with_extension("moved");
        std::fs::rename(dir.path(), &moved).expect("moved away");
        let mut ran = false;
        let refused = store.write(|_| ran = true);
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "{refused:?}"
        );
        assert!(!ran, "a refused write changes nothing");

        // Once it can be, the whole file is rewritten first, then the write goes through.
        std::fs::rename(&moved, dir.path()).expect("moved back");
        store
            .write(|inner| rename(inner, "Third"))
            .expect("recovered");
        let loaded = load(&path).expect("a whole file");
        assert_eq!(display_name(&loaded), "Third");
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(text.ends_with('\n'), "no torn line left behind");
        store
            .write(|inner| rename(inner, "Fourth"))
            .expect("appends again");
        assert_eq!(display_name(&load(&path).expect("loads")), "Fourth");
    }

    #[test]
    fn only_an_unfinished_last_line_may_be_torn() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("state.jsonl");
        let store = Store::open(Some(&path), tenant).expect("opens");
        store.write(|inner| rename(inner, "Kept")).expect("written");
        drop(store);
        let whole = std::fs::read(&path).expect("readable");

        // A torn tail, even one cut inside a multi-byte character, is dropped.
        let mut torn = whole.clone();
        torn.extend_from_slice("{\"organization\":{\"displayName\":\"Ca\u{f1}".as_bytes());
        torn.pop();
        std::fs::write(&path, &torn).expect("written");
        assert_eq!(display_name(&load(&path).expect("tolerated")), "Kept");

        // The same damage followed by more lines is not a torn tail: a clear error.
        let mut damaged = whole[..whole.len() - 20].to_vec();
        damaged.push(b'\n');
        damaged.extend_from_slice(b"{\"seq\":99}\n");
        std::fs::write(&path, &damaged).expect("written");
        let error = load(&path).expect_err("damaged");
        let message = error.to_string();
        assert!(
            message.contains("line 2 is not a state record"),
            "{message}"
        );
        assert!(
            message.contains("only an unfinished last line"),
            "{message}"
        );

        // A complete but broken last line is damage too.
        let mut garbage = whole.clone();
        garbage.extend_from_slice(b"garbage\n");
        std::fs::write(&path, &garbage).expect("written");
        assert!(load(&path).is_err());
    }

    #[test]
    fn the_state_file_is_private_and_older_formats_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("state.jsonl");
        drop(Store::open(Some(&path), tenant).expect("opens"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |path: &Path| {
                std::fs::metadata(path)
                    .expect("exists")
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode(&path), 0o600);
            // Even where the file, or a leftover temporary file, was readable by anyone.
            let loose = std::fs::Permissions::from_mode(0o644);
            std::fs::set_permissions(&path, loose.clone()).expect("chmod");
            std::fs::write(path.with_extension("tmp"), "").expect("written");
            std::fs::set_permissions(path.with_extension("tmp"), loose).expect("chmod");
            drop(Store::open(Some(&path), tenant).expect("opens again"));
            assert_eq!(mode(&path), 0o600);
        }

        let mut old = tenant();
        old.format = 0;
        let line = serde_json::to_string(&Entry::Snapshot(Box::new(old))).expect("json");
        std::fs::write(&path, format!("{line}\n")).expect("written");
        let error = Store::open(Some(&path), tenant).expect_err("older format");
        assert!(
            error.to_string().contains("older tenant-emulator")
                && error.to_string().contains("delete it"),
            "{error}"
        );
    }
}
