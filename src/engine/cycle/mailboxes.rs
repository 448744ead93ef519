//! Hybrid write-back's two parts of the cycle: the tenant's mailbox changes read in the cloud
//! import, and the write-back export into AD.

use super::*;

impl Cycle<'_> {
    /// Reads the tenant's mailbox changes into the store (hybrid write-back), counted as
    /// updates. A tenant without the mailbox endpoint is the run's error, not its failure: the
    /// rest of the cycle goes on, and write-back waits. Returns whether the read succeeded.
    pub(super) async fn import_mailboxes(
        &mut self,
        counters: &mut StepCounters,
    ) -> Result<bool, CycleError> {
        let saved = self
            .store
            .cursor(WRITE_BACK_CURSOR)?
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(DeltaLink);
        let graph = &self.connections.graph;
        let mut delta = graph.mailbox_delta(saved.as_ref())?;
        let mut started_over = false;
        loop {
            let page = delta.next_page().await?;
            let Some(page) = page else {
                return Ok(true);
            };
            match page {
                MailboxPage::Changes {
                    changes,
                    delta_link,
                } => {
                    let mut changed = Vec::new();
                    let mut removed = Vec::new();
                    for change in &changes {
                        match change {
                            MailboxChange::Changed { item, mailbox } => {
                                changed.push((mailbox.user_id.as_str(), item));
                            }
                            MailboxChange::Removed { user_id } => removed.push(user_id.as_str()),
                        }
                    }
                    counters.updates += changed.len() as u64;
                    // The link is kept only with the last page: a read that stops halfway
                    // starts again from the old link, and saving a mailbox twice is harmless.
                    let link = delta_link.as_ref().map(|link| link.0.as_str());
                    self.store
                        .save_mailbox_changes(&changed, &removed, link, now_ms())?;
                }
                MailboxPage::ResyncRequired if saved.is_some() && !started_over => {
                    tracing::warn!(
                        "the tenant no longer knows the saved mailbox delta link; reading every mailbox instead"
                    );
                    started_over = true;
                    delta = graph.mailbox_delta(None)?;
                }
                MailboxPage::ResyncRequired => {
                    return Err(CycleError::Graph(GraphError::NotGraph {
                        url: self.config.cloud.graph.clone(),
                        what: "a mailbox delta that asks to start over when started over"
                            .to_owned(),
                    }));
                }
                MailboxPage::Missing { url, answer } => {
                    let message = format!(
                        "hybrid write-back is on, but the tenant has no mailbox endpoint ({url} answered: {answer}); public Microsoft Graph offers none, so no mailbox attribute is written back"
                    );
                    counters.errors += 1;
                    self.recorder.report.write_back.errors += 1;
                    self.store.record_errors(
                    self.recorder.run_id(),
                    &[ErrorRecord {
                        step: StepKind::CloudImport,
                        dn: String::new(),
                        anchor: None,
                        object_type: None,
                        error_type: "write-back-unavailable".to_owned(),
                        code: None,
                        server_message: message,
                        hint: "turn hybrid write-back off (run setup again with options.hybrid_write_back = false), or point dirsync at a tenant service that offers the mailbox attributes".to_owned(),
                        first_occurred_at: now_ms(),
                        retry_count: 0,
                    }],
                )?;
                    return Ok(false);
                }
            }
        }
    }

    /// The write-back export step: reads which write-back attributes the forest's schema has
    /// (saying which it skips), then writes the pending mailboxes as the service account.
    pub(super) async fn write_back_export(&mut self) -> Result<(), CycleError> {
        self.step(StepKind::WriteBackExport)?;
        let connection = self.connections.directory.connection().await?;
        let root = crate::directory::forest::read_root_dse(connection).await?;
        let (present, missing) = crate::directory::permissions::write_back_schema(
            connection,
            &root.schema_naming_context,
        )
        .await?;
        let schema = WriteBackSchema {
            writable: present
                .into_iter()
                .map(|attribute| attribute.name)
                .collect(),
            skipped: missing,
        };
        if self.store.cursor(WRITE_BACK_SCHEMA_CURSOR)?.as_deref()
            != Some(schema.fingerprint().as_bytes())
        {
            // An attribute appeared (or went): every mailbox is checked against AD again.
            self.store.mark_all_mailboxes_pending()?;
            self.store.set_cursor(
                WRITE_BACK_SCHEMA_CURSOR,
                schema.fingerprint().as_bytes(),
                now_ms(),
            )?;
        }
        let warnings: Vec<crate::store::runs::WarningRecord> = schema
            .skipped
            .iter()
            .map(|attribute| crate::store::runs::WarningRecord {
                dn: root.schema_naming_context.clone(),
                anchor: String::new(),
                attribute: attribute.clone(),
                value: String::new(),
                message: format!(
                    "the forest's schema has no {attribute}; hybrid write-back skips it (extend the schema with Exchange's to have it written)"
                ),
            })
            .collect();
        self.store
            .record_warnings(self.recorder.run_id(), &warnings)?;
        self.recorder.report.write_back.skipped = schema.skipped.clone();

        let mut counters = StepCounters::default();
        let context = WriteBackContext {
            connection,
            store: self.store,
            run_id: self.recorder.run_id(),
            schema: &schema,
            progress: self.recorder.progress_callback(),
            stop: self.stop,
        };
        let result = write_back::export(
            &context,
            &mut counters,
            &mut self.recorder.report.write_back,
        )
        .await;
        self.end_step(StepKind::WriteBackExport, counters)?;
        result
    }
}
