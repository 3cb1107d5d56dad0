//! The Arrow schema of document parts: `id` (Utf8) and `tokens` (`List<UInt32>`).

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

/// Column holding the document id.
pub const ID_COLUMN: &str = "id";
/// Column holding the token ids of a document, in reading order.
pub const TOKENS_COLUMN: &str = "tokens";
/// Sub-directory of a corpus holding the Parquet parts.
pub const DOCS_DIR: &str = "docs";

/// The list item field of the `tokens` column.
pub fn token_item_field() -> Field {
    Field::new("item", DataType::UInt32, false)
}

/// Schema of every document part.
pub fn document_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(ID_COLUMN, DataType::Utf8, false),
        Field::new_list(TOKENS_COLUMN, token_item_field(), false),
    ]))
}

/// Relative path of part number `index`.
pub fn part_name(index: usize) -> String {
    format!("{DOCS_DIR}/part-{index:05}.parquet")
}
