//! The query behind the `database` check of `/ready`.

use super::pool::Db;
use crate::Result;

impl Db {
    /// Answers once Postgres does: `SELECT 1` on a connection of the read pool.
    pub(crate) async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
