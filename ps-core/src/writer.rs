//! Push identities and what a caller keeps to stay exactly-once across failures and restarts.
//!
//! Every matrix handle is a **writer**: a 64-bit id and one sequence counter per shard, so each
//! shard sees the handle's pushes numbered 1, 2, 3, ... and applies each (writer, seq) once
//! (`dedup.rs`). Two things can leave a caller unsure whether a push was applied:
//!
//! - **An unconfirmed push.** A piece of a push that still failed after the client's retries
//!   (its shard unreachable, or a connection that broke after sending) may or may not have been
//!   applied. The push then fails with [`PsError::PushUnconfirmed`], whose [`PushToken`] holds
//!   every piece that was not confirmed, each under the (writer, seq) it was sent with.
//!   [`Client::resend`](crate::Client::resend) sends them again: a piece that had been applied is
//!   answered `Done` without being applied again, the others are applied once. Resending is safe
//!   any number of times and from any client of the same cluster; a token can be serialized
//!   (serde) to survive a restart. Pieces the shard refused outright (validation,
//!   `SeqExpired`) are in the token too, so a resend ends in that refusal rather than in silence.
//! - **A restarted worker.** Random writer ids die with the process. A worker that must finish
//!   its pushes exactly once after a restart gives its handle a durable identity with
//!   [`Matrix::with_writer`](crate::Matrix::with_writer) and persists
//!   [`Matrix::writer_state`](crate::Matrix::writer_state).
//!
//! # What a durable writer must persist
//! The [`WriterState`] (id and next sequence number per shard) **together with** whatever
//! determines the pushes that follow it, e.g. in the same checkpoint:
//! - Resuming from a state taken *before* some pushes, the worker must push exactly the same
//!   contents again in the same order (a deterministic replay from its checkpoint): each
//!   replayed push gets its old (writer, seq), so those already applied are answered `Done`.
//!   A shard never looks at the content of a duplicate, so a (writer, seq) reused for *different*
//!   content is silently dropped: if the replay may differ, persist the state taken *after* the
//!   last push was issued, plus the tokens of the pushes not confirmed, and resend those.
//! - Never let two live handles of one model share a writer id, and never hand out sequence
//!   numbers below ones already used (a fresh id per run is the simple way to get both).
//! - Do not skip far ahead: numbers never sent are gaps a shard keeps open until
//!   `Limits::dedup_window` later pushes were applied, and a writer idle past
//!   `Limits::writer_idle_expiry` has its open gaps given up (late pushes into them are refused
//!   with `SeqExpired`, never applied twice).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{PsError, Result};
use crate::message::{Push, Request};
use crate::value::Values;

/// A writer's identity and where its sequences stand: persist it to resume the writer after a
/// restart (see the module doc for what else must be persisted with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterState {
    pub id: u64,
    /// The sequence number the next push to shard `i` gets (numbers start at 1).
    pub next_seq: Vec<u64>,
}

impl WriterState {
    /// A writer `id` that has not pushed yet, for a model over `shards` shards.
    pub fn new(id: u64, shards: usize) -> Self {
        WriterState {
            id,
            next_seq: vec![1; shards],
        }
    }
}

/// One shard's piece of a push, as it was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushPiece {
    pub shard: u32,
    pub seq: u64,
    pub rows: Vec<u64>,
    pub cols: Vec<u32>,
    pub values: Values,
}

/// The pieces of a push that were not confirmed, to be resent with
/// [`Client::resend`](crate::Client::resend) under the same writer and sequence numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushToken {
    pub model: String,
    pub writer: u64,
    pub pieces: Vec<PushPiece>,
}

impl PushToken {
    /// The shards whose pieces are unconfirmed.
    pub fn shards(&self) -> Vec<u32> {
        self.pieces.iter().map(|p| p.shard).collect()
    }
}

/// A handle's live identity: shared by its clones, so they never reuse a sequence number.
#[derive(Debug)]
pub(crate) struct Writer {
    id: u64,
    next_seq: Vec<AtomicU64>,
}

impl Writer {
    pub(crate) fn new(state: WriterState) -> Self {
        Writer {
            id: state.id,
            next_seq: state.next_seq.into_iter().map(AtomicU64::new).collect(),
        }
    }

    /// Checks a caller-supplied state against the model's shard count. Sequence number 0 would
    /// be taken for an applied push (every window starts with 0 applied), so it is refused.
    pub(crate) fn checked(state: WriterState, model: &str, shards: usize) -> Result<Self> {
        if state.next_seq.len() != shards {
            return Err(PsError::InvalidRequest(format!(
                "writer {} has sequence numbers for {} shards, but model '{model}' spans {shards}",
                state.id,
                state.next_seq.len()
            )));
        }
        if state.next_seq.contains(&0) {
            return Err(PsError::InvalidRequest(format!(
                "writer {}: sequence numbers start at 1, not 0",
                state.id
            )));
        }
        Ok(Writer::new(state))
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn next(&self, shard: usize) -> u64 {
        self.next_seq[shard].fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn state(&self) -> WriterState {
        WriterState {
            id: self.id,
            next_seq: self
                .next_seq
                .iter()
                .map(|s| s.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

/// A push piece ready for [`Client`](crate::Client): its shard and the shared request.
pub(crate) type Piece = (usize, Arc<Request>);

impl PushPiece {
    pub(crate) fn into_request(self, model: &str, writer: u64) -> Piece {
        let push = Push {
            model: model.to_string(),
            writer,
            seq: self.seq,
            rows: self.rows,
            cols: self.cols,
            values: self.values,
        };
        (self.shard as usize, Arc::new(Request::Push(push)))
    }

    /// The piece back from a sent request (a copy only if a duplicate still holds it).
    pub(crate) fn from_request((shard, request): Piece) -> Option<Self> {
        match Arc::unwrap_or_clone(request) {
            Request::Push(p) => Some(PushPiece {
                shard: u32::try_from(shard).ok()?,
                seq: p.seq,
                rows: p.rows,
                cols: p.cols,
                values: p.values,
            }),
            _ => None,
        }
    }
}
