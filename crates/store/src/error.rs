//! Storage errors, translated where the query runs: a unique violation
//! becomes [`StoreError::Conflict`] naming the API field that clashed, so
//! no caller has to guess from constraint names.

/// What went wrong in storage, in terms the API can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint rejected the write; `field` is the clashing
    /// field as the API names it (`hostname`, `slug`, `email`, `name`…).
    #[error("conflict on {field}")]
    Conflict { field: &'static str },
    /// The database was already initialised.
    #[error("already initialised")]
    AlreadyInitialised,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// True when the database refused a text value the client sent:
    /// PostgreSQL stores no NUL character (U+0000) in text (SQLSTATE
    /// 22021) nor a `\u0000` escape in jsonb (22P05). SQLite stores both.
    pub fn is_refused_text(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("22021") | Some("22P05")))
    }
}

/// True when `err` is a unique violation (by error kind, which SQLite and
/// PostgreSQL both report).
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// Translates the error of a write into a table whose unique indexes are
/// on `columns` (column → API field): a violation of the index on a column
/// becomes [`StoreError::Conflict`] naming that column's field. PostgreSQL
/// names the index (`apps_hostname`); SQLite names the columns in its
/// message (`UNIQUE constraint failed: apps.hostname`). A violation no
/// listed column explains is named by the first.
pub(crate) fn unique(
    columns: &'static [(&'static str, &'static str)],
) -> impl Fn(sqlx::Error) -> StoreError {
    move |err| {
        let sqlx::Error::Database(db) = &err else {
            return StoreError::Database(err);
        };
        if db.kind() != sqlx::error::ErrorKind::UniqueViolation {
            return StoreError::Database(err);
        }
        let what = db.constraint().unwrap_or_else(|| db.message());
        let field = columns
            .iter()
            .find(|(column, _)| what.contains(column))
            .or(columns.first())
            .map_or("id", |(_, field)| field);
        StoreError::Conflict { field }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
