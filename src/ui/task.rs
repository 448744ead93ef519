//! Work the window hands to main's async runtime: each piece of work is a task on that runtime
//! (blocking reads go to its blocking threads), and the window polls for the result once per
//! frame. The window never waits: a frame only looks at what has arrived.

use std::future::Future;
use std::sync::mpsc;

use tokio::runtime::Handle;

use crate::cloud::auth::DeviceCodePrompt;
use crate::setup::{Milestone, SetupFailure, SetupProgress};

/// What setup tells the window while a task runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupEvent {
    Step(usize, String),
    Note(String),
    Warning(String),
    DeviceCode(DeviceCodePrompt),
    Done(Milestone),
    /// The wizard's first sync cycle began (after setup, so not one of setup's milestones).
    FirstSyncStarted,
    /// How a sync cycle the dashboard started goes.
    Sync(crate::engine::cycle::Progress),
}

/// Setup's [`SetupProgress`], sent to the window (and waking it up).
#[derive(Debug)]
pub struct Reporter {
    events: mpsc::Sender<SetupEvent>,
    repaint: egui::Context,
    last_note: Option<String>,
}

impl Reporter {
    pub fn first_sync_started(&self) {
        self.send(SetupEvent::FirstSyncStarted);
    }

    /// A sync cycle's progress, as lines in the window's log.
    pub fn cycle_progress(&self) -> impl Fn(crate::engine::cycle::Progress) + Sync + use<> {
        let events = self.events.clone();
        let repaint = self.repaint.clone();
        move |progress| {
            let line = match progress {
                crate::engine::cycle::Progress::Step(step) => format!("sync: {}", step.as_str()),
                crate::engine::cycle::Progress::Objects { step, done, total } => match total {
                    Some(total) => format!("sync: {}: {done} of {total}", step.as_str()),
                    None => format!("sync: {}: {done}", step.as_str()),
                },
            };
            let _ = events.send(SetupEvent::Note(line));
            repaint.request_repaint();
        }
    }

    /// A sync cycle's progress, as events for the dashboard's live view.
    pub fn sync_progress(&self) -> impl Fn(crate::engine::cycle::Progress) + Sync + use<> {
        let events = self.events.clone();
        let repaint = self.repaint.clone();
        move |progress| {
            let _ = events.send(SetupEvent::Sync(progress));
            repaint.request_repaint();
        }
    }

    /// The latest note setup made, for a check whose answer is that note.
    pub fn last_note(&mut self) -> Option<String> {
        self.last_note.take()
    }

    fn send(&self, event: SetupEvent) {
        // The window may have dropped the task (Back, Cancel): nobody is listening then.
        let _ = self.events.send(event);
        self.repaint.request_repaint();
    }
}

impl SetupProgress for Reporter {
    fn step(&mut self, number: usize, title: &str) {
        self.send(SetupEvent::Step(number, title.to_owned()));
    }
    fn note(&mut self, text: &str) {
        self.last_note = Some(text.to_owned());
        self.send(SetupEvent::Note(text.to_owned()));
    }
    fn warning(&mut self, text: &str) {
        self.send(SetupEvent::Warning(text.to_owned()));
    }
    fn device_code(&mut self, prompt: &DeviceCodePrompt) {
        self.send(SetupEvent::DeviceCode(prompt.clone()));
    }
    fn done(&mut self, milestone: &Milestone) {
        self.send(SetupEvent::Done(milestone.clone()));
    }
}

/// A piece of work under way.
#[derive(Debug)]
pub struct Task<T> {
    result: mpsc::Receiver<T>,
    events: mpsc::Receiver<SetupEvent>,
}

impl<T: Send + 'static> Task<T> {
    /// Starts `work` as a task on `runtime` (main's).
    pub fn spawn<Work, Fut>(runtime: &Handle, repaint: &egui::Context, work: Work) -> Task<T>
    where
        Work: FnOnce(Reporter) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (result_sender, result) = mpsc::channel();
        let (event_sender, events) = mpsc::channel();
        let reporter = Reporter {
            events: event_sender,
            repaint: repaint.clone(),
            last_note: None,
        };
        let repaint = repaint.clone();
        runtime.spawn(async move {
            let output = work(reporter).await;
            let _ = result_sender.send(output);
            repaint.request_repaint();
        });
        Task { result, events }
    }
}

impl<T> Task<T> {
    /// The events that arrived since the last call.
    pub fn events(&self) -> Vec<SetupEvent> {
        self.events.try_iter().collect()
    }

    /// The result, once it has arrived. A task that panicked reports nothing: the caller shows
    /// it as failed.
    pub fn try_result(&self) -> Option<Result<T, String>> {
        match self.result.try_recv() {
            Ok(output) => Some(Ok(output)),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(Err(
                "the background work stopped unexpectedly; see the log (DIRSYNC_LOG=debug)"
                    .to_owned(),
            )),
        }
    }
}

/// A check or lookup the window started, in one of its states.
#[derive(Debug, Default)]
pub enum Lookup<T> {
    #[default]
    NotStarted,
    Running(Task<Result<T, SetupFailure>>),
    Done(T),
    /// What went wrong, in the server's words with what to do, and the field it is about.
    Failed(SetupFailure),
}

impl<T: Send + 'static> Lookup<T> {
    /// Reads something off the UI thread (the state database, a file): `read` blocks, so it runs
    /// on the runtime's blocking threads, and the window polls for what it returns.
    pub fn read<Read>(runtime: &Handle, repaint: &egui::Context, read: Read) -> Lookup<T>
    where
        Read: FnOnce() -> Result<T, String> + Send + 'static,
    {
        let (result_sender, result) = mpsc::channel();
        let (_, events) = mpsc::channel();
        let repaint = repaint.clone();
        runtime.spawn_blocking(move || {
            let output = read().map_err(|message| SetupFailure::failed(None, message));
            let _ = result_sender.send(output);
            repaint.request_repaint();
        });
        Lookup::Running(Task { result, events })
    }

    pub fn start<Work, Fut>(runtime: &Handle, repaint: &egui::Context, work: Work) -> Lookup<T>
    where
        Work: FnOnce(Reporter) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, SetupFailure>> + Send + 'static,
    {
        Lookup::Running(Task::spawn(runtime, repaint, work))
    }
}

impl<T> Lookup<T> {
    /// Takes the result if it has arrived; returns the events that came with it. Call once per
    /// frame.
    pub fn poll(&mut self) -> Vec<SetupEvent> {
        let Lookup::Running(task) = self else {
            return Vec::new();
        };
        let events = task.events();
        match task.try_result() {
            None => {}
            Some(Ok(Ok(value))) => *self = Lookup::Done(value),
            Some(Ok(Err(failure))) => *self = Lookup::Failed(failure),
            Some(Err(stopped)) => *self = Lookup::Failed(SetupFailure::failed(None, stopped)),
        }
        events
    }

    pub fn is_running(&self) -> bool {
        matches!(self, Lookup::Running(_))
    }

    pub fn done(&self) -> Option<&T> {
        match self {
            Lookup::Done(value) => Some(value),
            _ => None,
        }
    }

    pub fn failure(&self) -> Option<&SetupFailure> {
        match self {
            Lookup::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}
