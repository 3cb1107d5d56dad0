//! The optional shared secret: servers check it on every call with [`CheckToken`], clients attach
//! it with [`AttachToken`]. It travels as `authorization: Bearer <token>`; a caller without the
//! right token gets `Unauthenticated` before its message is even decoded.

use std::sync::Arc;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use super::status::error_to_status;
use crate::error::{PsError, Result};

const HEADER: &str = "authorization";

/// Server side: rejects calls whose token differs from the expected one (if any).
#[derive(Clone, Default)]
pub struct CheckToken {
    expected: Option<Arc<str>>,
}

impl std::fmt::Debug for CheckToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("CheckToken")
            .field("enabled", &self.expected.is_some())
            .finish()
    }
}

impl CheckToken {
    pub fn new(token: Option<String>) -> Self {
        CheckToken {
            expected: token.map(Arc::from),
        }
    }
}

impl Interceptor for CheckToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(token) if same(token.as_bytes(), expected.as_bytes()) => Ok(request),
            Some(_) => Err(reject("wrong token")),
            None => Err(reject("no token presented")),
        }
    }
}

fn reject(why: &str) -> Status {
    tracing::warn!(why, "rejected an unauthenticated call");
    error_to_status(&PsError::Unauthenticated(why.to_string()))
}

/// Compares in time independent of where the inputs differ, so the token cannot be guessed
/// byte by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Client side: adds the token (if any) to every call.
#[derive(Clone, Default)]
pub struct AttachToken {
    header: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for AttachToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachToken")
            .field("enabled", &self.header.is_some())
            .finish()
    }
}

impl AttachToken {
    pub fn new(token: Option<&str>) -> Result<Self> {
        let header = token
            .map(|t| {
                MetadataValue::try_from(format!("Bearer {t}")).map_err(|_| {
                    PsError::InvalidRequest("the token must be printable ASCII".to_string())
                })
            })
            .transpose()?;
        Ok(AttachToken { header })
    }
}

impl Interceptor for AttachToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            request.metadata_mut().insert(HEADER, h.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        let attach = |t: Option<&str>| AttachToken::new(t).unwrap().call(Request::new(())).unwrap();
        let mut check = CheckToken::new(Some("s3cret".into()));
        assert!(check.call(attach(Some("s3cret"))).is_ok());
        for wrong in [None, Some("s3creT"), Some("s3cret2"), Some("")] {
            let status = check.call(attach(wrong)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{wrong:?}");
        }
        assert!(CheckToken::new(None).call(attach(None)).is_ok());
        assert!(AttachToken::new(Some("bad\ntoken")).is_err());
    }
}
