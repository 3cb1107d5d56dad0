//! A client of a ps-core parameter server from Python: `connect` to a cluster's master over
//! gRPC (the servers `glint-lda master` / `glint-lda server` run), or an in-process cluster
//! (`_PsEmbeddedCluster`, for tests and notebooks). Requests run on the module's tokio runtime
//! with the GIL released. The Python layer (`glint_lda.ps`) converts arguments to contiguous
//! arrays of the right dtype before they get here.

use std::path::PathBuf;
use std::time::Duration;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use ps_core::{
    Client, ClientConfig, ClusterConfig, DType, EmbeddedCluster, Matrix, ModelSpec,
    PartitionerKind, Storage,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::{detached, json_to_py, message};

fn text(e: impl std::error::Error) -> String {
    message(&e)
}

/// A typed matrix handle.
#[derive(Clone)]
enum AnyMatrix {
    I32(Matrix<i32>),
    I64(Matrix<i64>),
    F32(Matrix<f32>),
    F64(Matrix<f64>),
}

/// Runs `$body` with `$m` bound to the typed handle and `$t` to its element type.
macro_rules! typed {
    ($any:expr, $m:ident, $t:ident => $body:expr) => {
        match $any {
            AnyMatrix::I32($m) => {
                type $t = i32;
                $body
            }
            AnyMatrix::I64($m) => {
                type $t = i64;
                $body
            }
            AnyMatrix::F32($m) => {
                type $t = f32;
                $body
            }
            AnyMatrix::F64($m) => {
                type $t = f64;
                $body
            }
        }
    };
}

impl AnyMatrix {
    fn spec(&self) -> &ModelSpec {
        typed!(self, m, _T => m.spec())
    }

    fn shards(&self) -> usize {
        typed!(self, m, _T => m.shards())
    }
}

fn parse_dtype(dtype: &str) -> PyResult<DType> {
    match dtype.to_ascii_lowercase().as_str() {
        "i32" | "int32" => Ok(DType::I32),
        "i64" | "int64" => Ok(DType::I64),
        "f32" | "float32" => Ok(DType::F32),
        "f64" | "float64" => Ok(DType::F64),
        other => Err(PyValueError::new_err(format!(
            "dtype must be i32, i64, f32 or f64, got {other:?}"
        ))),
    }
}

/// Blocks on `future` on the module's runtime with the GIL released.
fn block<T: Send>(
    py: Python<'_>,
    future: impl std::future::Future<Output = ps_core::Result<T>> + Send,
) -> PyResult<T> {
    let rt = crate::runtime()?;
    detached(py, move || rt.block_on(future).map_err(text))
}

/// A connection to a parameter-server cluster (use `glint_lda.ps.Client`).
#[pyclass(module = "glint_lda._glint_lda", name = "_PsClient", frozen)]
pub struct PsClient {
    client: Client,
}

#[pymethods]
impl PsClient {
    /// Number of shards the client reaches.
    #[getter]
    fn shards(&self) -> usize {
        self.client.shards()
    }

    /// Creates a `rows` × `cols` matrix of `dtype` on every shard.
    #[pyo3(signature = (name, rows, cols, dtype = "i64", sparse = false, partitioner = "cyclic", aggregator = "add"))]
    #[allow(clippy::too_many_arguments)]
    fn create_matrix(
        &self,
        py: Python<'_>,
        name: String,
        rows: u64,
        cols: u32,
        dtype: &str,
        sparse: bool,
        partitioner: &str,
        aggregator: &str,
    ) -> PyResult<PsMatrix> {
        let dtype = parse_dtype(dtype)?;
        let partitioner = match partitioner.to_ascii_lowercase().as_str() {
            "cyclic" => PartitionerKind::Cyclic,
            "range" => PartitionerKind::Range,
            other => {
                return Err(PyValueError::new_err(format!(
                    "partitioner must be 'cyclic' or 'range', got {other:?}"
                )));
            }
        };
        let spec = ModelSpec::matrix(name, rows, cols, dtype)
            .with_storage(if sparse {
                Storage::Sparse
            } else {
                Storage::Dense
            })
            .with_partitioner(partitioner)
            .with_aggregator(aggregator);
        let c = self.client.clone();
        let matrix = match dtype {
            DType::I32 => AnyMatrix::I32(block(py, async move { c.create_matrix(spec).await })?),
            DType::I64 => AnyMatrix::I64(block(py, async move { c.create_matrix(spec).await })?),
            DType::F32 => AnyMatrix::F32(block(py, async move { c.create_matrix(spec).await })?),
            DType::F64 => AnyMatrix::F64(block(py, async move { c.create_matrix(spec).await })?),
        };
        Ok(PsMatrix { matrix })
    }

    /// Opens an existing matrix by name (its dtype as the master records it).
    fn matrix(&self, py: Python<'_>, name: String) -> PyResult<PsMatrix> {
        let c = self.client.clone();
        let wanted = name.clone();
        let models = block(py, async move { c.list_models().await })?;
        let Some(record) = models.iter().find(|r| r.spec.name == wanted) else {
            return Err(crate::GlintError::new_err(format!(
                "no model named '{name}'"
            )));
        };
        let c = self.client.clone();
        let matrix = match record.spec.dtype {
            DType::I32 => AnyMatrix::I32(block(py, async move { c.matrix(&name).await })?),
            DType::I64 => AnyMatrix::I64(block(py, async move { c.matrix(&name).await })?),
            DType::F32 => AnyMatrix::F32(block(py, async move { c.matrix(&name).await })?),
            DType::F64 => AnyMatrix::F64(block(py, async move { c.matrix(&name).await })?),
        };
        Ok(PsMatrix { matrix })
    }

    /// Removes a model from every shard and from the master.
    fn destroy(&self, py: Python<'_>, name: String) -> PyResult<()> {
        let c = self.client.clone();
        block(py, async move { c.destroy(&name).await })
    }

    /// Every model the master knows: dicts of name, rows, cols, dtype, storage, partitioner,
    /// aggregator and shards.
    fn list_models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.client.clone();
        let models = block(py, async move { c.list_models().await })?;
        let list: Vec<serde_json::Value> = models
            .into_iter()
            .map(|r| {
                let mut v = serde_json::to_value(&r.spec).unwrap_or(serde_json::Value::Null);
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("shards".into(), r.shards.into());
                }
                v
            })
            .collect();
        json_to_py(py, &serde_json::Value::Array(list))
    }
}

/// A handle on a matrix of a parameter-server cluster (use `glint_lda.ps.Matrix`).
#[pyclass(module = "glint_lda._glint_lda", name = "_PsMatrix", frozen)]
pub struct PsMatrix {
    matrix: AnyMatrix,
}

#[pymethods]
impl PsMatrix {
    #[getter]
    fn name(&self) -> String {
        self.matrix.spec().name.clone()
    }

    #[getter]
    fn rows(&self) -> u64 {
        self.matrix.spec().rows
    }

    #[getter]
    fn cols(&self) -> u32 {
        self.matrix.spec().cols
    }

    /// "i32", "i64", "f32" or "f64".
    #[getter]
    fn dtype(&self) -> String {
        self.matrix.spec().dtype.to_string()
    }

    #[getter]
    fn sparse(&self) -> bool {
        self.matrix.spec().storage == Storage::Sparse
    }

    #[getter]
    fn shards(&self) -> usize {
        self.matrix.shards()
    }

    /// The elements at (rows[i], cols[i]) as a 1-D array of the matrix's dtype.
    fn pull<'py>(
        &self,
        py: Python<'py>,
        rows: PyReadonlyArray1<'py, u64>,
        cols: PyReadonlyArray1<'py, u32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rows = rows.as_slice()?.to_vec();
        let cols = cols.as_slice()?.to_vec();
        typed!(self.matrix.clone(), m, T => {
            let values: Vec<T> = block(py, async move { m.pull(&rows, &cols).await })?;
            Ok(PyArray1::from_vec(py, values).into_any())
        })
    }

    /// Whole rows as a len(rows) × cols array of the matrix's dtype.
    fn pull_rows<'py>(
        &self,
        py: Python<'py>,
        rows: PyReadonlyArray1<'py, u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rows = rows.as_slice()?.to_vec();
        let n = rows.len();
        let cols = self.matrix.spec().cols as usize;
        typed!(self.matrix.clone(), m, T => {
            let pulled = block(py, async move { m.pull_rows(&rows).await })?;
            let mut flat: Vec<T> = Vec::with_capacity(n * cols);
            for row in &pulled {
                flat.extend(row.to_dense(cols));
            }
            Ok(PyArray1::from_vec(py, flat).reshape([n, cols])?.into_any())
        })
    }

    /// Combines values[i] into (rows[i], cols[i]) with the matrix's aggregation, exactly once.
    fn push<'py>(
        &self,
        py: Python<'py>,
        rows: PyReadonlyArray1<'py, u64>,
        cols: PyReadonlyArray1<'py, u32>,
        values: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let rows = rows.as_slice()?.to_vec();
        let cols = cols.as_slice()?.to_vec();
        let dtype = self.dtype();
        typed!(self.matrix.clone(), m, T => {
            let values: PyReadonlyArray1<'py, T> = values.extract().map_err(|_| {
                PyTypeError::new_err(format!("values must be a 1-D {dtype} array"))
            })?;
            let values = values.as_slice()?.to_vec();
            block(py, async move { m.push(&rows, &cols, &values).await })
        })
    }
}

/// Connects to the master at `master_addr` (HOST:PORT) and waits until `servers` servers have
/// registered. `token` is the cluster's shared secret; `tls_ca` (a PEM file) switches to TLS,
/// with `tls_cert`/`tls_key` as the client's identity and `tls_domain` the name to verify.
#[pyfunction]
#[pyo3(signature = (master_addr, token = None, servers = 1, timeout = 30.0, tls_ca = None, tls_cert = None, tls_key = None, tls_domain = None))]
#[allow(clippy::too_many_arguments)]
pub fn connect(
    py: Python<'_>,
    master_addr: String,
    token: Option<String>,
    servers: usize,
    timeout: f64,
    tls_ca: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_domain: Option<String>,
) -> PyResult<PsClient> {
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(PyValueError::new_err(
            "timeout must be a positive number of seconds",
        ));
    }
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| crate::GlintError::new_err(format!("{}: {e}", p.display())))
    };
    let tls = match tls_ca {
        None if tls_cert.is_some() || tls_key.is_some() || tls_domain.is_some() => {
            return Err(PyValueError::new_err(
                "tls_cert, tls_key and tls_domain need tls_ca",
            ));
        }
        None => None,
        Some(ca) => {
            let mut tls =
                ps_core::grpc::TlsClient::new(read(&ca)?).map_err(|e| crate::glint_err(&e))?;
            match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => {
                    let id = ps_core::grpc::TlsIdentity::from_pem(read(&cert)?, read(&key)?)
                        .map_err(|e| crate::glint_err(&e))?;
                    tls = tls.with_identity(id);
                }
                (None, None) => {}
                _ => {
                    return Err(PyValueError::new_err("tls_cert and tls_key go together"));
                }
            }
            if let Some(d) = tls_domain {
                tls = tls.with_domain(d).map_err(|e| crate::glint_err(&e))?;
            }
            Some(tls)
        }
    };
    let config = ClientConfig {
        timeout: Duration::from_secs_f64(timeout),
        tls,
        ..ClientConfig::default()
    };
    let client = block(py, async move {
        ps_core::grpc::connect(&master_addr, token.as_deref(), config, servers).await
    })?;
    Ok(PsClient { client })
}

/// A master and shards in this process (use `glint_lda.ps.EmbeddedCluster`).
#[pyclass(module = "glint_lda._glint_lda", name = "_PsEmbeddedCluster", frozen)]
pub struct PsEmbeddedCluster {
    cluster: EmbeddedCluster,
}

#[pymethods]
impl PsEmbeddedCluster {
    #[new]
    #[pyo3(signature = (shards = 2))]
    fn new(shards: usize) -> PyResult<Self> {
        if shards == 0 {
            return Err(PyValueError::new_err("shards must be at least 1"));
        }
        let cluster = EmbeddedCluster::start(shards, ClusterConfig::default())
            .map_err(|e| crate::glint_err(&e))?;
        Ok(PsEmbeddedCluster { cluster })
    }

    /// A client of this cluster (in-process transport).
    fn client(&self) -> PsClient {
        PsClient {
            client: self.cluster.client(),
        }
    }

    #[getter]
    fn shards(&self) -> usize {
        self.cluster.client().shards()
    }
}
