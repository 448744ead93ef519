//! The tenant in memory behind one mutex, and its state file: an append-only journal of JSON
//! lines (a snapshot line, then one line per changed record) replayed and compacted at start and
//! at stop. Every mutation reaches the file (written and flushed to the operating system) before
//! the request that made it is answered.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{DirObject, MemberEvent, State, Tombstone};

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

/// The locked tenant: read and change `state`, then tell the journal what changed.
pub struct Inner {
    pub state: State,
    journal: Option<(PathBuf, File)>,
    pending: Vec<String>,
    last_written_seq: u64,
}

impl Store {
    /// Loads the state file when there is one (replaying its journal), else makes a tenant with
    /// `create`. With a path, the file is compacted and left open for appending.
    pub fn open(path: Option<&Path>, create: impl FnOnce() -> State) -> io::Result<Store> {
        let state = match path {
            Some(path) if path.exists() => load(path)?,
            _ => create(),
        };
        let journal = match path {
            Some(path) => Some((path.to_owned(), compact(path, &state)?)),
            None => None,
        };
        let last_written_seq = state.seq;
        Ok(Store {
            inner: Mutex::new(Inner {
                state,
                journal,
                pending: Vec::new(),
                last_written_seq,
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
    pub fn write<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> io::Result<T> {
        let mut inner = self.lock();
        let out = f(&mut inner);
        inner.commit()?;
        Ok(out)
    }

    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let inner = self.lock();
        f(&inner.state)
    }

    /// Rewrites the state file as one snapshot (at stop).
    pub fn compact(&self) -> io::Result<()> {
        let mut inner = self.lock();
        inner.commit()?;
        if let Some((path, _)) = &inner.journal {
            let path = path.clone();
            let file = compact(&path, &inner.state)?;
            inner.journal = Some((path, file));
        }
        Ok(())
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

    /// Writes what changed since the last commit.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.journal.is_some() && self.state.seq != self.last_written_seq {
            let entry = Entry::Seq(self.state.seq);
            self.push(&entry);
        }
        self.last_written_seq = self.state.seq;
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for line in self.pending.drain(..) {
            text.push_str(&line);
            text.push('\n');
        }
        if let Some((_, file)) = &mut self.journal {
            file.write_all(text.as_bytes())?;
            file.flush()?;
        }
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
    let reader = BufReader::new(File::open(path)?);
    let mut state = None;
    let mut lines = reader.lines().peekable();
    let mut number = 0;
    while let Some(line) = lines.next() {
        number += 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(&line) {
            Ok(entry) => apply(&mut state, entry),
            // A torn last line (the process died while writing it): its request never got an
            // answer, so dropping it loses nothing that was acknowledged.
            Err(_) if lines.peek().is_none() => {
                eprintln!(
                    "tenant-emulator: ignoring a torn last line ({number}) of {}",
                    path.display()
                );
            }
            Err(error) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} line {number} is not a state record: {error}",
                        path.display()
                    ),
                ));
            }
        }
    }
    state.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} holds no tenant snapshot", path.display()),
        )
    })
}

/// Writes the state as one snapshot line to a temporary file, renames it over the state file
/// and returns the state file opened for appending.
fn compact(path: &Path, state: &State) -> io::Result<File> {
    let temporary = path.with_extension("tmp");
    {
        let mut file = File::create(&temporary)?;
        let line = serde_json::to_string(&Entry::Snapshot(Box::new(state.clone())))
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        file.write_all(line.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    OpenOptions::new().append(true).open(path)
}
