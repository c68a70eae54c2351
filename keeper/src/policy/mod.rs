//! The keeper's decisions, as pure functions of state: what to settle and when ([`batch`]), and what fees to pay
//! ([`fees`]). Nothing here does I/O, so property tests drive them without a chain or a database.

pub(crate) mod batch;
pub(crate) mod fees;
