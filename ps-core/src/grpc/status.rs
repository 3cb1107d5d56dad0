//! Errors on the wire: a failed call answers with a gRPC status whose code fits the error, whose
//! message is the error's text, and whose details hold the error itself (`Error` in
//! `proto/ps.proto`), so the client gets back the same [`PsError`] variant. Statuses that do not
//! come from a ps-core handler (connection failures, tonic's own limits) are mapped by their code.

use prost::Message;
use prost::bytes::Bytes;
use tonic::{Code, Status};

use super::encode::{dtype_from_pb, dtype_to_pb};
use super::pb;
use crate::error::PsError;

fn error_to_pb(e: &PsError) -> pb::Error {
    use pb::error::Kind;
    let kind = match e.clone() {
        PsError::RowOutOfRange { model, row, rows } => {
            Kind::RowOutOfRange(pb::RowOutOfRange { model, row, rows })
        }
        PsError::ColOutOfRange { model, col, cols } => {
            Kind::ColOutOfRange(pb::ColOutOfRange { model, col, cols })
        }
        PsError::UnknownModel(m) => Kind::UnknownModel(m),
        PsError::ModelExists(m) => Kind::ModelExists(m),
        PsError::TypeMismatch {
            model,
            actual,
            requested,
        } => Kind::TypeMismatch(pb::TypeMismatch {
            model,
            actual: dtype_to_pb(actual) as i32,
            requested: dtype_to_pb(requested) as i32,
        }),
        PsError::UnknownAggregator(a) => Kind::UnknownAggregator(a),
        PsError::InvalidRequest(m) => Kind::InvalidRequest(m),
        PsError::RequestTooLarge { bytes, limit } => Kind::RequestTooLarge(pb::RequestTooLarge {
            bytes: bytes as u64,
            limit: limit as u64,
        }),
        PsError::ShardUnreachable {
            shard,
            attempts,
            last_error,
        } => Kind::ShardUnreachable(pb::ShardUnreachable {
            shard: shard as u64,
            attempts,
            last_error,
        }),
        PsError::NoSuchShard { shard, shards } => Kind::NoSuchShard(pb::NoSuchShard {
            shard: shard as u64,
            shards: shards as u64,
        }),
        PsError::Transient(m) => Kind::Transient(m),
        PsError::Unauthenticated(m) => Kind::Unauthenticated(m),
        PsError::Master(m) => Kind::Master(m),
        PsError::Snapshot { path, message } => Kind::Snapshot(pb::Snapshot {
            path: path.to_string_lossy().into_owned(),
            message,
        }),
        PsError::ShuttingDown => Kind::ShuttingDown(pb::Empty {}),
        PsError::Server(m) => Kind::Server(m),
        PsError::SeqExpired { model, writer, seq } => {
            Kind::SeqExpired(pb::SeqExpired { model, writer, seq })
        }
        PsError::ShardHeld {
            shard,
            holder,
            claimant,
            last_seen_ms,
        } => Kind::ShardHeld(pb::ShardHeld {
            shard,
            holder,
            claimant,
            last_seen_ms,
        }),
        PsError::ForeignCluster {
            shard,
            claimant,
            claimed,
            cluster,
        } => Kind::ForeignCluster(pb::ForeignCluster {
            shard,
            claimant,
            claimed,
            cluster,
        }),
        // A client-side report that no server sends; on the wire it stands for its cause.
        PsError::PushUnconfirmed { cause, .. } => return error_to_pb(&cause),
    };
    pb::Error { kind: Some(kind) }
}

fn error_from_pb(e: pb::Error) -> Option<PsError> {
    use pb::error::Kind;
    Some(match e.kind? {
        Kind::RowOutOfRange(x) => PsError::RowOutOfRange {
            model: x.model,
            row: x.row,
            rows: x.rows,
        },
        Kind::ColOutOfRange(x) => PsError::ColOutOfRange {
            model: x.model,
            col: x.col,
            cols: x.cols,
        },
        Kind::UnknownModel(m) => PsError::UnknownModel(m),
        Kind::ModelExists(m) => PsError::ModelExists(m),
        Kind::TypeMismatch(x) => PsError::TypeMismatch {
            model: x.model,
            actual: dtype_from_pb(x.actual).ok()?,
            requested: dtype_from_pb(x.requested).ok()?,
        },
        Kind::UnknownAggregator(a) => PsError::UnknownAggregator(a),
        Kind::InvalidRequest(m) => PsError::InvalidRequest(m),
        Kind::RequestTooLarge(x) => PsError::RequestTooLarge {
            bytes: usize::try_from(x.bytes).unwrap_or(usize::MAX),
            limit: usize::try_from(x.limit).unwrap_or(usize::MAX),
        },
        Kind::ShardUnreachable(x) => PsError::ShardUnreachable {
            shard: usize::try_from(x.shard).unwrap_or(usize::MAX),
            attempts: x.attempts,
            last_error: x.last_error,
        },
        Kind::NoSuchShard(x) => PsError::NoSuchShard {
            shard: usize::try_from(x.shard).unwrap_or(usize::MAX),
            shards: usize::try_from(x.shards).unwrap_or(usize::MAX),
        },
        Kind::Transient(m) => PsError::Transient(m),
        Kind::Unauthenticated(m) => PsError::Unauthenticated(m),
        Kind::Master(m) => PsError::Master(m),
        Kind::Snapshot(x) => PsError::Snapshot {
            path: x.path.into(),
            message: x.message,
        },
        Kind::ShuttingDown(_) => PsError::ShuttingDown,
        Kind::Server(m) => PsError::Server(m),
        Kind::SeqExpired(x) => PsError::SeqExpired {
            model: x.model,
            writer: x.writer,
            seq: x.seq,
        },
        Kind::ShardHeld(x) => PsError::ShardHeld {
            shard: x.shard,
            holder: x.holder,
            claimant: x.claimant,
            last_seen_ms: x.last_seen_ms,
        },
        Kind::ForeignCluster(x) => PsError::ForeignCluster {
            shard: x.shard,
            claimant: x.claimant,
            claimed: x.claimed,
            cluster: x.cluster,
        },
    })
}

/// The status a server answers with when a request fails: a fitting code, the error's text, and
/// the error itself in the details.
pub fn error_to_status(e: &PsError) -> Status {
    if let PsError::PushUnconfirmed { cause, .. } = e {
        return error_to_status(cause);
    }
    let code = match e {
        PsError::RowOutOfRange { .. } | PsError::ColOutOfRange { .. } => Code::OutOfRange,
        PsError::UnknownModel(_) | PsError::UnknownAggregator(_) | PsError::NoSuchShard { .. } => {
            Code::NotFound
        }
        PsError::ModelExists(_) => Code::AlreadyExists,
        PsError::TypeMismatch { .. } | PsError::InvalidRequest(_) => Code::InvalidArgument,
        PsError::RequestTooLarge { .. } => Code::ResourceExhausted,
        PsError::ShardUnreachable { .. }
        | PsError::Transient(_)
        | PsError::ShuttingDown
        | PsError::PushUnconfirmed { .. } => Code::Unavailable,
        PsError::Unauthenticated(_) => Code::Unauthenticated,
        PsError::Master(_)
        | PsError::Snapshot { .. }
        | PsError::SeqExpired { .. }
        | PsError::ShardHeld { .. }
        | PsError::ForeignCluster { .. } => Code::FailedPrecondition,
        PsError::Server(_) => Code::Internal,
    };
    Status::with_details(
        code,
        e.to_string(),
        Bytes::from(error_to_pb(e).encode_to_vec()),
    )
}

/// The ps-core error a failed call stands for. Errors from a ps-core server come back as the
/// variant they were; otherwise only failures of the connection itself are transient (retryable).
pub fn error_from_status(status: &Status) -> PsError {
    if !status.details().is_empty()
        && let Some(e) = pb::Error::decode(status.details())
            .ok()
            .and_then(error_from_pb)
    {
        return e;
    }
    if let Some(e) = tls_failure(status) {
        return e;
    }
    let message = status.message().to_string();
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            PsError::Transient(format!("{:?}: {message}", status.code()))
        }
        Code::Unauthenticated => PsError::Unauthenticated(message),
        Code::OutOfRange | Code::ResourceExhausted => match size_limit(&message) {
            Some((bytes, limit)) => PsError::RequestTooLarge { bytes, limit },
            None => PsError::InvalidRequest(message),
        },
        // Not from a shard's handler (which always sends details): the connection or tonic
        // itself failed, possibly after the request was applied, so not a refusal.
        _ => PsError::Server(format!("{:?}: {message}", status.code())),
    }
}

/// A failed TLS handshake, which no retry mends: the peer's certificate was not trusted, ours
/// was refused, or one side does not speak TLS. Tonic reports these as `Unavailable`, `Unknown`
/// (the cause only in the source chain) or `Internal`, so they are recognised by the wording of
/// rustls and h2 and reported as `Unauthenticated`, with the whole cause. A handshake timeout
/// stays transient.
fn tls_failure(status: &Status) -> Option<PsError> {
    if !matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Internal
    ) {
        return None;
    }
    let cause = source_chain(status);
    // A plain-text client reads a TLS server's alert record as an HTTP/2 frame header, whose
    // length is then far above any frame size an HTTP/2 server may send.
    if cause.contains("frame with invalid size") {
        return Some(PsError::Unauthenticated(format!(
            "the server does not speak plain-text HTTP/2 ({cause}); if it serves TLS, \
             configure its CA on this client"
        )));
    }
    let hint = if cause.contains("received corrupt message") {
        " (is the server serving plain text? then drop the TLS options or enable TLS on it)"
    } else if cause.contains("received fatal alert: CertificateRequired") {
        " (the server requires a client certificate)"
    } else if cause.contains("received fatal alert")
        || cause.contains("invalid peer certificate")
        || cause.contains("HTTP/2 was not negotiated")
        || cause.contains("peer is incompatible")
        || cause.contains("peer misbehaved")
    {
        ""
    } else {
        return None;
    };
    Some(PsError::Unauthenticated(format!(
        "TLS handshake failed: {cause}{hint}"
    )))
}

/// The status message followed by every distinct, informative message of its source chain.
fn source_chain(status: &Status) -> String {
    let mut text = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        let message = e.to_string();
        if message != "transport error" && !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = e.source();
    }
    text
}

/// Reads tonic's "message length too large: found N bytes, the limit is: L bytes".
fn size_limit(message: &str) -> Option<(usize, usize)> {
    let rest = message.split("found ").nth(1)?;
    let bytes = rest.split(' ').next()?.parse().ok()?;
    let limit = rest
        .split("limit is: ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Some((bytes, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::DType;

    #[test]
    fn every_error_survives_a_status() {
        let errors = [
            PsError::RowOutOfRange {
                model: "m".into(),
                row: u64::MAX,
                rows: 3,
            },
            PsError::ColOutOfRange {
                model: "m".into(),
                col: 7,
                cols: 3,
            },
            PsError::UnknownModel("x".into()),
            PsError::ModelExists("x".into()),
            PsError::TypeMismatch {
                model: "m".into(),
                actual: DType::I32,
                requested: DType::F64,
            },
            PsError::UnknownAggregator("a".into()),
            PsError::InvalidRequest("bad".into()),
            PsError::RequestTooLarge {
                bytes: 10,
                limit: 5,
            },
            PsError::ShardUnreachable {
                shard: 2,
                attempts: 3,
                last_error: "gone".into(),
            },
            PsError::NoSuchShard {
                shard: 4,
                shards: 3,
            },
            PsError::Transient("t".into()),
            PsError::Unauthenticated("who".into()),
            PsError::Master("m".into()),
            PsError::Snapshot {
                path: "/x/y".into(),
                message: "torn".into(),
            },
            PsError::ShuttingDown,
            PsError::Server("io".into()),
            PsError::ShardHeld {
                shard: 2,
                holder: "a:1".into(),
                claimant: "b:2".into(),
                last_seen_ms: 1500,
            },
            PsError::ForeignCluster {
                shard: 1,
                claimant: "b:2".into(),
                claimed: "c1".into(),
                cluster: "c2".into(),
            },
        ];
        for e in errors {
            assert_eq!(error_from_status(&error_to_status(&e)), e);
        }
        let tonic_limit = Status::out_of_range(
            "Error, decoded message length too large: found 5000 bytes, the limit is: 4096 bytes",
        );
        assert_eq!(
            error_from_status(&tonic_limit),
            PsError::RequestTooLarge {
                bytes: 5000,
                limit: 4096
            }
        );
        assert!(error_from_status(&Status::unavailable("refused")).is_retryable());
        // Handshake failures are final; a handshake that timed out may succeed later.
        for final_failure in [
            Status::unavailable("invalid peer certificate: UnknownIssuer"),
            Status::unknown("received fatal alert: CertificateRequired"),
            Status::internal("h2 protocol error: frame with invalid size"),
        ] {
            let e = error_from_status(&final_failure);
            assert!(matches!(e, PsError::Unauthenticated(_)), "{e}");
        }
        assert!(error_from_status(&Status::unavailable("TLS handshake timeout.")).is_retryable());
        assert!(!error_from_status(&Status::internal("decode")).is_retryable());
    }
}
