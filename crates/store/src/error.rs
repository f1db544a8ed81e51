//! Storage errors, translated where the query runs.

/// What went wrong in storage, in terms the API can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint rejected the write (hostname, slug, email…).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database was already initialised.
    #[error("already initialised")]
    AlreadyInitialised,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Maps a unique violation to [`StoreError::Conflict`] (by error kind,
    /// which SQLite and PostgreSQL both report), anything else to
    /// [`StoreError::Database`].
    pub fn from_write(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.kind() == sqlx::error::ErrorKind::UniqueViolation {
                // PostgreSQL names the index; SQLite names the columns in
                // its message ("UNIQUE constraint failed: apps.hostname").
                let what = db
                    .constraint()
                    .map(str::to_string)
                    .unwrap_or_else(|| db.message().to_string());
                return StoreError::Conflict(what);
            }
        }
        StoreError::Database(err)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
